// Benchmark: decode steps with a bf16 base's weights packed (model/pack.ts, as generate and serve hold them) against
// the stored row layout, in one process: the model is loaded twice, and rounds of each (a 32-token prompt per row,
// then 127 greedy steps of `--rows` rows) alternate, so the VM's drift hits both alike. Reports the median step
// time of each and the median of the paired ratios. Both copies share the caches, as two models in one server would.
//   node --import tsx bench/layout-ab.ts [--model tiny-english|mid-134m] [--rows 1,8] [--pairs 20]
//        [--json bench/results/layout-ab-<model>.json]

import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDecoder, decodeBatch, freeDecoder } from '../src/model/decode.ts';
import { kvBlocksFor, type KvSeq } from '../src/model/kv-cache.ts';
import type { Model } from '../src/model/llama.ts';
import { cpuModelBench } from './cpu-model-bench.ts';
import { flag } from './flags.ts';
import { machine } from './machine.ts';
import { median } from './median.ts';

const here = dirname(fileURLToPath(import.meta.url));
const model = flag('model', 'tiny-english');
const rowCounts = flag('rows', '1,8').split(',').map(Number);
const pairs = Number(flag('pairs', '20'));
const jsonPath = resolve(flag('json', resolve(here, 'results', `layout-ab-${model}.json`)));
const PROMPT = 32, NEW = 128;

const { be, fail, withModelDir, loadServed, writeJson } = cpuModelBench('layout-ab', model);
if (![...rowCounts, pairs].every((n) => Number.isInteger(n) && n > 0)) fail('--rows and --pairs take positive whole numbers');
const started = `${machine()}, no GPU used`;

/** ms per decode step of R rows after their prompts, greedy. */
async function round(m: Model, R: number): Promise<number> {
  const d = createDecoder(m, kvBlocksFor(PROMPT + NEW) * R);
  const seqs: KvSeq[] = Array.from({ length: R }, () => ({ blocks: [], length: 0 }));
  const prompt = (r: number) => Array.from({ length: PROMPT }, (_, i) => 3 + ((i * 7919 + r * 104729) % (m.config.vocabSize - 3)));
  let next = (await decodeBatch(d, seqs.map((seq, r) => ({ seq, ids: prompt(r), lora: null, logits: 'argmax' as const })))).argmax;
  const t0 = performance.now();
  for (let k = 1; k < NEW; k++) next = (await decodeBatch(d, seqs.map((seq, r) => ({ seq, ids: [next[r]!], lora: null, logits: 'argmax' as const })))).argmax;
  const ms = (performance.now() - t0) / (NEW - 1);
  freeDecoder(d);
  return ms;
}

const cases: { rows: number; rows_layout_ms: number; packed_ms: number; speedup_median: number; speedups: number[] }[] = [];
await withModelDir(async (dir) => {
  const rowsModel = await loadServed(dir, 'rows');
  const packedModel = await loadServed(dir, 'packed');
  for (const R of rowCounts) {
    await round(rowsModel, R), await round(packedModel, R); // warm-up
    const a: number[] = [], b: number[] = [];
    for (let k = 0; k < pairs; k++) {
      // alternate which goes first
      if (k % 2) b.push(await round(packedModel, R)), a.push(await round(rowsModel, R));
      else a.push(await round(rowsModel, R)), b.push(await round(packedModel, R));
    }
    const speedups = a.map((x, k) => x / b[k]!);
    cases.push({
      rows: R, rows_layout_ms: Number(median(a).toFixed(3)), packed_ms: Number(median(b).toFixed(3)),
      speedup_median: Number(median(speedups).toFixed(3)), speedups: speedups.map((s) => Number(s.toFixed(2))),
    });
  }
});

console.log(`\n${model}, decode steps, packed vs row layout (cpu, ${be.describe()}); machine: ${started}; JSON: ${jsonPath}`);
console.log('| rows | row layout ms/step | packed ms/step | packed speedup (median of pairs) | per pair |');
console.log('| ---- | ------------------ | -------------- | -------------------------------- | -------- |');
for (const c of cases) console.log(`| ${c.rows} | ${c.rows_layout_ms} | ${c.packed_ms} | ${c.speedup_median}x | ${c.speedups.join(' ')} |`);
await writeJson(jsonPath, { machine: started, model, backend: be.describe(), prompt_tokens: PROMPT, new_tokens: NEW, pairs, cases });
process.exit(0);
