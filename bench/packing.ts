// --packing against padded batches on the alpaca data (../shared/data/alpaca_data_first335.json, its one record with an
// empty output skipped) with the tiny-english
// base (../shared/fixtures/pretrained): the padding fraction of one epoch's micro-batches under each batching, and the
// training throughput (real tokens per second, steps after the first) of short runs, alternating unpacked and packed
// in the same process so machine load hits both alike. Prints a table and writes JSON.
//   node --import tsx bench/packing.ts [--backend cpu|js|cuda|auto] [--steps 6] [--rounds 2] [--micro_batch_size 4]
//                                      [--batch_size 16] [--cutoff_len 256] [--out FILE]

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '../src/backends/select.ts';
import { collate } from '../src/data/collate.ts';
import { packedBatches, packedRowLength } from '../src/data/pack.ts';
import { loadTokenizer } from '../src/tokenizer/load.ts';
import { finetune } from '../src/train/finetune.ts';
import type { TrainLog } from '../src/train/loop.ts';
import { epochPlan } from '../src/train/plan.ts';
import { prepareData } from '../src/train/prepare-data.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const shared = process.env.ALPACA_SHARED_DIR ?? resolve(root, '..', 'shared');
const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'cpu' }, steps: { type: 'string', default: '6' }, rounds: { type: 'string', default: '2' },
    micro_batch_size: { type: 'string', default: '4' }, batch_size: { type: 'string', default: '16' }, cutoff_len: { type: 'string', default: '256' },
    out: { type: 'string', default: join(root, 'bench', 'results', 'packing.json') },
  },
});
const steps = Number(values.steps), rounds = Number(values.rounds);
const microBatchSize = Number(values.micro_batch_size), batchSize = Number(values.batch_size), cutoffLen = Number(values.cutoff_len);
const baseModel = join(shared, 'fixtures', 'pretrained', 'tiny-english');
const dataPath = join(shared, 'data', 'alpaca_data_first335.json');
const seed = 42;

// Padding: every micro-batch of epoch 0 under each batching (the trainer's order: shuffled, seed 42).
const data = await prepareData(loadTokenizer(baseModel), {
  dataPath, valDataPath: null, valSetSize: 0, cutoffLen, trainOnInputs: false, addEosToken: false, promptTemplateName: 'alpaca',
  dataset: { skipEmptyOutputs: true }, warn: () => {},
});
const lengths = data.train.map((e) => e.input_ids.length);
const plan = epochPlan(lengths, { microBatchSize, gradAccumSteps: batchSize / microBatchSize, order: 'shuffle', seed }, 0);
const rowLen = packedRowLength(cutoffLen, lengths);
const padding = { unpacked: { slots: 0, batches: 0 }, packed: { slots: 0, batches: 0 } };
for (const step of plan) {
  for (const idx of step) {
    const b = collate(idx.map((i) => data.train[i]!), { padId: 0 });
    padding.unpacked.slots += b.B * b.T;
    padding.unpacked.batches++;
  }
  for (const b of packedBatches(step.flat().map((i) => data.train[i]!), rowLen, microBatchSize, 0)) {
    padding.packed.slots += b.B * b.T;
    padding.packed.batches++;
  }
}
const realTokens = lengths.reduce((a, n) => a + n, 0);

// Throughput: unpacked and packed runs alternate; each step's real tokens / its seconds, the first step left out.
const work = mkdtempSync(join(tmpdir(), 'bench-packing-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const rates: Record<'unpacked' | 'packed', number[]> = { unpacked: [], packed: [] };
let backendName = '';
for (let round = 0; round < rounds; round++) {
  for (const packing of [false, true]) {
    const result = await finetune({
      baseModel, dataPath, outputDir: join(work, `r${round}-${packing}`), backend: selectBackend(values.backend as string), promptTemplateName: 'alpaca',
      trainOnInputs: false, cutoffLen, batchSize, microBatchSize, maxSteps: steps, valSetSize: 0, evalSteps: 0, saveSteps: 0, loggingSteps: 1,
      loadBestModelAtEnd: false, warmupSteps: 0, seed, packing, dataset: { skipEmptyOutputs: true }, progress: false, log: () => {},
    });
    backendName = result.model.be.name;
    const perStep = result.history.filter((e): e is TrainLog => e.kind === 'train' && e.step > 1).map((e) => e.tokens_per_second);
    rates[packing ? 'packed' : 'unpacked'].push(...perStep);
    console.error(`round ${round + 1}/${rounds} ${packing ? 'packed' : 'unpacked'}: ${perStep.map((r) => r.toFixed(0)).join(' ')} tokens/s`);
  }
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`;
const rows = (['unpacked', 'packed'] as const).map((mode) => ({
  mode,
  padding_fraction: 1 - realTokens / padding[mode].slots,
  micro_batches_per_epoch: padding[mode].batches,
  token_slots_per_epoch: padding[mode].slots,
  tokens_per_second_median: median(rates[mode]),
  tokens_per_second_min: Math.min(...rates[mode]),
  tokens_per_second_max: Math.max(...rates[mode]),
  timed_steps: rates[mode].length,
}));
console.log(`\n${data.train.length} alpaca examples (${realTokens} tokens), cutoff_len ${cutoffLen} (rows of ${rowLen}), batch ${batchSize} = ${microBatchSize} x ${batchSize / microBatchSize}; ${backendName}; ${machine}`);
console.log('mode       padding   micro-batches/epoch   token slots/epoch   tokens/s median (min-max, steps)');
for (const r of rows) {
  console.log(`${r.mode.padEnd(10)} ${(100 * r.padding_fraction).toFixed(1).padStart(6)}%   ${String(r.micro_batches_per_epoch).padStart(19)}   ` +
    `${String(r.token_slots_per_epoch).padStart(17)}   ${r.tokens_per_second_median.toFixed(0)} (${r.tokens_per_second_min.toFixed(0)}-${r.tokens_per_second_max.toFixed(0)}, ${r.timed_steps})`);
}
console.log(`packed / unpacked throughput: ${(rows[1]!.tokens_per_second_median / rows[0]!.tokens_per_second_median).toFixed(2)}x`);
mkdirSync(dirname(values.out!), { recursive: true });
writeFileSync(values.out!, JSON.stringify({
  data: 'alpaca_data_first335.json', base: 'tiny-english', backend: backendName, machine, cutoff_len: cutoffLen, row_length: rowLen,
  batch_size: batchSize, micro_batch_size: microBatchSize, steps, rounds, examples: data.train.length, real_tokens: realTokens, rows,
}, null, 2) + '\n');
console.log(`wrote ${values.out}`);
