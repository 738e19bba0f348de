// Benchmark: where a batched decode step's time goes, per backend op, at 1 row and at N rows, and so what each row
// beyond the first costs. One process alternates blocks of 16 steps of the two batch sizes (so the VM's drift hits
// both alike), each row decoding greedily after a 32-token prompt up to 128 new tokens, bf16 weights, cpu backend;
// medians over blocks. Every backend call is timed on the JavaScript thread (the cpu backend's ops return when done);
// "JavaScript" is the rest of decodeBatch. Not the scheduler (serve-scaling.ts).
//   node --import tsx bench/decode-profile.ts [--model tiny-english|mid-134m] [--rows 8] [--reps 4] [--layout packed|rows]
//        [--json out/bench/decode-profile.json]

import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CpuBackend } from '../src/backends/native/cpu.ts';
import { createDecoder, decodeBatch, freeDecoder, type Decoder } from '../src/model/decode.ts';
import { kvBlocksFor, type KvSeq } from '../src/model/kv-cache.ts';
import { cpuModelBench } from './cpu-model-bench.ts';
import { flag } from './flags.ts';
import { machine } from './machine.ts';

const here = dirname(fileURLToPath(import.meta.url));
const model = flag('model', 'tiny-english');
const rowsWide = Number(flag('rows', '8'));
const reps = Number(flag('reps', '4'));
const jsonPath = resolve(flag('json', resolve(here, '..', 'out', 'bench', 'decode-profile.json')));
const PROMPT = 32, NEW = 128, BLOCK = 16;

const { be, fail, withModelDir, layout, loadServed, writeJson } = cpuModelBench('decode-profile', model);
if (![rowsWide, reps].every((n) => Number.isInteger(n) && n > 1)) fail('--rows and --reps take whole numbers above 1');

// Each backend call adds its time to `timing` (when set) under its name; products also by their shape.
let timing: Map<string, number> | null = null;
for (const name of Object.getOwnPropertyNames(CpuBackend.prototype)) {
  const op = (be as unknown as Record<string, unknown>)[name];
  if (name === 'constructor' || typeof op !== 'function') continue;
  (be as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
    if (!timing) return op.apply(be, args);
    const t0 = performance.now();
    const result = op.apply(be, args);
    const key = name === 'matmulForward' ? `matmul ${args[5]}x${args[6]}` : name;
    timing.set(key, (timing.get(key) ?? 0) + performance.now() - t0);
    return result;
  };
}

interface Batch {
  R: number;
  d: Decoder;
  seqs: KvSeq[];
  next: ArrayLike<number>;
  blocks: Map<string, number>[]; // per timed block: ms by op, and 'step' the whole
}

const started = `${machine()}, no GPU used`;
const batches: Batch[] = [];
await withModelDir(async (dir) => {
  const m = await loadServed(dir);
  const prompt = Array.from({ length: PROMPT }, (_, i) => 3 + ((i * 7919) % (m.config.vocabSize - 3)));
  for (const R of [1, rowsWide]) batches.push({ R, d: createDecoder(m, kvBlocksFor(PROMPT + NEW) * R), seqs: [], next: [], blocks: [] });
  const step = async (b: Batch, ids: (i: number) => number[]) =>
    (b.next = (await decodeBatch(b.d, b.seqs.map((seq, i) => ({ seq, ids: ids(i), lora: null, logits: 'argmax' as const })))).argmax);
  for (let rep = 0; rep < reps; rep++) {
    for (const b of batches) {
      freeDecoder(b.d);
      b.seqs = Array.from({ length: b.R }, () => ({ blocks: [], length: 0 }));
      await step(b, () => prompt);
    }
    for (let k = 0; k < NEW / BLOCK; k++) {
      for (const b of batches) {
        const times = new Map<string, number>();
        timing = rep > 0 ? times : null; // the first rep warms up
        const t0 = performance.now();
        for (let s = 0; s < BLOCK; s++) await step(b, (i) => [b.next[i]!]);
        times.set('step', performance.now() - t0);
        timing = null;
        if (rep > 0) b.blocks.push(times);
      }
    }
  }
});

// us per step, median over blocks
const perStep = (b: Batch, key: string) => {
  const xs = b.blocks.map((t) => t.get(key) ?? 0).sort((x, y) => x - y);
  return (xs[xs.length >> 1]! / BLOCK) * 1000;
};
const [one, wide] = batches as [Batch, Batch];
const ops = [...wide.blocks[0]!.keys()].filter((k) => k !== 'step');
const rows = ops.map((op) => ({ op, one: perStep(one, op), wide: perStep(wide, op) }));
const js = { op: 'JavaScript (the rest)', one: perStep(one, 'step') - rows.reduce((s, r) => s + r.one, 0), wide: perStep(wide, 'step') - rows.reduce((s, r) => s + r.wide, 0) };
rows.sort((a, b) => b.wide - a.wide).push(js, { op: 'step', one: perStep(one, 'step'), wide: perStep(wide, 'step') });
const extra = (r: { one: number; wide: number }) => (r.wide - r.one) / (rowsWide - 1);

console.log(`\n${model}, decode steps at 1 and ${rowsWide} rows (cpu, ${be.describe()}, ${layout} weights); machine: ${started}; JSON: ${jsonPath}`);
console.log(`| op | us per step, 1 row | us per step, ${rowsWide} rows | us per extra row |`);
console.log('| -- | ------------------ | ------------------- | ---------------- |');
for (const r of rows) console.log(`| ${r.op} | ${r.one.toFixed(1)} | ${r.wide.toFixed(1)} | ${extra(r).toFixed(1)} |`);
const oneStep = rows.at(-1)!.one;
const allowed = (rowsWide * oneStep) / 4; // the widest step that still gives 4x one row's tokens/s
console.log(`${rowsWide} rows give ${((rowsWide * oneStep) / rows.at(-1)!.wide).toFixed(2)}x one row's tokens/s; 4x would allow ` +
  `${allowed.toFixed(0)} us per step, ${((allowed - oneStep) / (rowsWide - 1)).toFixed(1)} per extra row`);
const round1 = (x: number) => Number(x.toFixed(1));
await writeJson(jsonPath, {
  machine: started, model, backend: be.describe(), layout, prompt_tokens: PROMPT, new_tokens: NEW, rows: rowsWide, blocks: wide.blocks.length,
  us_per_step: rows.map((r) => ({ op: r.op, one_row: round1(r.one), rows: round1(r.wide), per_extra_row: round1(extra(r)) })),
});
process.exit(0);
