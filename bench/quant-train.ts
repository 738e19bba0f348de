// Benchmark: LoRA training (q,v r=8, micro batch 1 x 256) of random LLaMA-7B/13B-shaped bf16 checkpoints on the
// cpu backend with the base quantized on load (NF4 + double quant, LLM.int8) or as stored (bf16): peak RSS, load
// time and tokens/s, each case in its own process (lora-train-case.ts); prints a table last and writes JSON.
// The checkpoints are written once into --dir (13.5 GB for 7B, 26 GB for 13B) and reused.
//   node --import tsx bench/quant-train.ts [--shapes llama-7b,llama-13b] [--formats nf4,int8,bf16]
//                                          [--steps 2] [--warmup 1] [--dir /tmp/alpaca-bench-models]
//                                          [--json out/bench/quant-train.json]
// bf16 13B (26 GB of weights) does not fit a 24 GiB machine and is left out.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flag } from './flags.ts';
import { writeRandomHfModel } from './random-model.ts';
import { LLAMA_SHAPES, type TrainCase } from './shapes.ts';

const here = dirname(fileURLToPath(import.meta.url));
const shapes = flag('shapes', 'llama-7b,llama-13b').split(',');
const formats = flag('formats', 'nf4,int8,bf16').split(',');
const steps = Number(flag('steps', '2')), warmup = Number(flag('warmup', '1'));
const modelsDir = resolve(flag('dir', '/tmp/alpaca-bench-models'));
const jsonPath = resolve(flag('json', resolve(here, '..', 'out', 'bench', 'quant-train.json')));
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`;

interface Result extends TrainCase {
  tokens_per_s: number;
  step_s: number;
  load_s: number;
  peak_rss_gib: number;
  loss: number;
}

const results: Result[] = [];
const skipped: string[] = [];
for (const shape of shapes) {
  if (!LLAMA_SHAPES[shape]) throw new Error(`unknown shape ${shape}; known: ${Object.keys(LLAMA_SHAPES).join(', ')}`);
  const dir = join(modelsDir, shape);
  if (!existsSync(join(dir, 'model.safetensors'))) {
    console.error(`writing a random ${shape} bf16 checkpoint into ${dir} ...`);
    await writeRandomHfModel(dir, LLAMA_SHAPES[shape]!, null);
  }
  for (const format of formats) {
    if (format === 'bf16' && shape === 'llama-13b') {
      skipped.push('llama-13b bf16: 26 GB of weights do not fit this machine');
      continue;
    }
    const c: TrainCase = {
      shape, backend: 'cpu', weightDtype: 'bf16', mb: 1, seq: 256, warmup, steps, modelDir: dir,
      ...(format === 'nf4' || format === 'int8' ? { quantize: format } : {}),
    };
    console.error(`running ${shape} ${format} ...`);
    const p = spawnSync(process.execPath, ['--import', 'tsx', resolve(here, 'lora-train-case.ts'), JSON.stringify(c)], { encoding: 'utf8', maxBuffer: 1 << 24 });
    const line = p.stdout?.trim().split('\n').filter((l) => l.startsWith('{')).pop();
    if (p.status === 0 && line) {
      const r = JSON.parse(line) as Result;
      results.push(r);
      console.error(`  ${r.tokens_per_s} tokens/s, peak RSS ${r.peak_rss_gib} GiB, loaded in ${r.load_s} s`);
    } else {
      skipped.push(`${shape} ${format}: ${(p.stderr?.trim().split('\n').slice(-3).join(' ')) || `exit ${p.status}`}`);
    }
  }
}

mkdirSync(dirname(jsonPath), { recursive: true });
writeFileSync(jsonPath, JSON.stringify({ machine, results, skipped }, null, 2) + '\n');
const rows = results.map((r) => [
  r.shape, r.quantize ?? 'bf16', `${r.mb} x ${r.seq}`, r.tokens_per_s.toFixed(1), r.step_s.toFixed(1), r.load_s.toFixed(0), r.peak_rss_gib.toFixed(2), r.loss.toFixed(3),
]);
const head = ['shape', 'base', 'batch', 'tokens/s', 's/step', 'load s', 'peak RSS GiB', 'loss'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const row = (cells: string[]) => `| ${cells.map((x, i) => x.padEnd(widths[i]!)).join(' | ')} |`;
console.log(`\nLoRA training on a quantized base (q,v r=8; AdamW + clip 1.0), cpu backend; ${machine}; JSON: ${jsonPath}`);
for (const s of skipped) console.log(`skipped: ${s}`);
console.log([row(head), row(widths.map((w) => '-'.repeat(w))), ...rows.map(row)].join('\n'));
