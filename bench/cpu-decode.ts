// Benchmark: batch-1 greedy decode tokens/s and peak RSS, cpu backend vs js vs llama.cpp (node-llama-cpp)
// on a GGUF export of the same weights at the same precision; prints a table last and writes JSON.

// 64-token prompt, then 128 new tokens. Models: ../shared's pretrained tiny-english, and random mid-134m
// weights written as an HF folder with tiny-english's tokenizer. Each case runs in its own process (decode-case.ts).
//   node --import tsx bench/cpu-decode.ts [--models tiny-english,mid-134m] [--precisions f32,bf16[,nf4,int8]]
//                                         [--backends js,cpu,llama.cpp] [--threads 1,2,...] [--rounds 1]
//                                         [--json out/bench/cpu-decode.json]
// --threads: each count for cpu and llama.cpp (default ALPACA_CPU_THREADS, else every CPU; llama.cpp also runs on 1,
// its threads spin while they wait, which a busy machine punishes). --rounds n: the cases of a model and precision
// n times, interleaved, each case's fastest round reported.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadLlamaConfig } from '../src/arch/llama-config.ts';
import { exportGguf } from '../src/export/export-gguf.ts';
import type { DecodeCase } from './decode-case.ts';
import { flag } from './flags.ts';
import { machine } from './machine.ts';
import { benchModelDir } from './random-model.ts';

const here = dirname(fileURLToPath(import.meta.url));
const models = flag('models', 'tiny-english,mid-134m').split(',');
const precisions = flag('precisions', 'f32,bf16').split(',') as DecodeCase['precision'][];
const backends = flag('backends', 'js,cpu,llama.cpp').split(',') as DecodeCase['backend'][];
const jsonPath = resolve(flag('json', resolve(here, '..', 'out', 'bench', 'cpu-decode.json')));
const threadCounts = flag('threads', process.env.ALPACA_CPU_THREADS ?? String(availableParallelism())).split(',').map(Number);
const rounds = Number(flag('rounds', '1'));
const host = machine();
const shared = process.env.ALPACA_SHARED_DIR ?? resolve(here, '..', '..', 'shared');
const tinyEnglish = join(shared, 'fixtures', 'pretrained', 'tiny-english');
if (!existsSync(tinyEnglish)) throw new Error(`${tinyEnglish} is missing: this benchmark needs ../shared beside the project`);

interface Result {
  model: string;
  backend: string;
  precision: string;
  threads: number;
  details: string;
  tokens_per_s: number;
  peak_rss_gib: number;
  first_tokens: number[];
}

const work = mkdtempSync(join(tmpdir(), 'bench-decode-'));
const results: Result[] = [];
const skipped: string[] = [];

function runCase(c: DecodeCase): void {
  console.error(`decoding ${c.model} (${c.precision}) on ${c.backend}, ${c.threads} threads ...`);
  const env = { ...process.env, ALPACA_CPU_THREADS: String(c.threads) };
  const p = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'decode-case.ts'), JSON.stringify(c)], { encoding: 'utf8', env });
  const line = p.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (p.status === 0 && line) {
    const r = JSON.parse(line) as Result;
    const i = results.findIndex((o) => o.model === r.model && o.backend === r.backend && o.precision === r.precision && o.threads === r.threads);
    if (i < 0) results.push(r);
    else if (r.tokens_per_s > results[i]!.tokens_per_s) results[i] = r;
    console.error(`  ${r.tokens_per_s} tokens/s, peak RSS ${r.peak_rss_gib} GiB`);
  } else {
    skipped.push(`${c.model} ${c.precision} ${c.backend}: ${p.stderr.trim().split('\n').slice(-2).join(' ')}`);
    console.error(`  failed: ${skipped.at(-1)}`);
  }
}

try {
  for (const model of models) {
    const dir = await benchModelDir(model, tinyEnglish, work);
    const vocabSize = loadLlamaConfig(dir).vocabSize;
    for (const precision of precisions) {
      const quantized = precision === 'nf4' || precision === 'int8'; // our cpu backend only: llama.cpp has no NF4/LLM.int8
      let gguf: string | undefined;
      if (backends.includes('llama.cpp') && !quantized) {
        gguf = join(work, `${model}-${precision}.gguf`);
        await exportGguf({ baseModel: dir, outfile: gguf, outtype: precision });
      }
      for (let round = 0; round < rounds; round++) {
        for (const backend of backends) {
          if (backend === 'js' && (round > 0 || model !== 'tiny-english' || precision !== 'f32')) continue; // ~100x slower: one case
          if (quantized && backend !== 'cpu') continue;
          for (const t of backend === 'llama.cpp' ? [...new Set([1, ...threadCounts])] : backend === 'js' ? [1] : threadCounts) {
            runCase({ model, dir, gguf, backend, precision, promptTokens: 64, newTokens: backend === 'js' ? 16 : 128, threads: t, vocabSize });
          }
        }
      }
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** The fastest llama.cpp run of the same model and precision. */
const bestLlama = (r: Result) => results.filter((o) => o.model === r.model && o.precision === r.precision && o.backend === 'llama.cpp')
  .sort((a, b) => b.tokens_per_s - a.tokens_per_s)[0];
const agree = (a: number[], b: number[]) => a.findIndex((t, i) => t !== b[i]) < 0 ? `${a.length}/${a.length}` : `${a.findIndex((t, i) => t !== b[i])}/${a.length}`;
mkdirSync(dirname(jsonPath), { recursive: true });
writeFileSync(jsonPath, JSON.stringify({ machine: host, threads: threadCounts, rounds, results, skipped }, null, 2) + '\n');
const rows = results.map((r) => {
  const ref = r.backend === 'cpu' ? bestLlama(r) : undefined;
  return [r.model, r.backend, r.precision, String(r.threads), r.tokens_per_s.toFixed(1), r.peak_rss_gib.toFixed(2),
    ref ? `${(r.tokens_per_s / ref.tokens_per_s).toFixed(2)}x` : '-', ref ? agree(r.first_tokens, ref.first_tokens) : '-'];
});
const head = ['model', 'backend', 'precision', 'threads', 'tokens/s', 'peak RSS GiB', 'vs best llama.cpp', 'same first tokens'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log(`\nBatch-1 greedy decode, 64-token prompt + 128 new tokens (js: 16), best of ${rounds} round(s) per case; ${host}; JSON: ${jsonPath}`);
const cpu = results.find((r) => r.backend === 'cpu');
if (cpu) console.log(`cpu backend: ${cpu.details}`);
for (const s of skipped) console.log(`skipped: ${s}`);
console.log([line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n'));
