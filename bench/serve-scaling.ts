// Benchmark: how our batch scheduler's aggregate rate scales with concurrent streams, measured so that the
// machine's drift cancels out. serve-throughput.ts runs every case in its own process, one after the other, and on
// a shared VM whose speed wanders by tens of percent within minutes its "vs 1 stream" column moves with it. Here one
// process runs rounds of 1 stream and of N streams alternately (32-token prompts + 128 new tokens per stream, greedy,
// bf16 weights, cpu backend) and reports the median over pairs of (N-stream rate / the 1-stream rate next to it).
//   node --import tsx bench/serve-scaling.ts [--model tiny-english|mid-134m] [--streams 4,8,16] [--pairs 9] [--layout packed|rows]
//        [--json bench/results/serve-scaling.json]

import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/engine/random.ts';
import { DEFAULT_OPTIONS } from '../src/generate/options.ts';
import { BatchScheduler } from '../src/generate/scheduler.ts';
import { cpuModelBench } from './cpu-model-bench.ts';
import { flag } from './flags.ts';
import { machine } from './machine.ts';
import { median } from './median.ts';

const here = dirname(fileURLToPath(import.meta.url));
const model = flag('model', 'tiny-english');
const streamCounts = flag('streams', '4,8,16').split(',').map(Number);
const pairs = Number(flag('pairs', '9'));
const jsonPath = resolve(flag('json', resolve(here, 'results', `serve-scaling-${model}.json`)));
const PROMPT = 32, NEW = 128;

const { be, fail, withModelDir, layout, loadServed, writeJson } = cpuModelBench('serve-scaling', model);
if (![...streamCounts, pairs].every((n) => Number.isInteger(n) && n > 0)) fail('--streams and --pairs take positive whole numbers');
const started = `${machine()}, no GPU used`;
const cases: {
  streams: number; pairs: number; ratio_median: number; ratios: number[]; one_stream_tokens_per_s: number; streams_tokens_per_s: number;
}[] = [];
await withModelDir(async (dir) => {
  const m = await loadServed(dir);
  const rng = new Rng(11);
  const maxStreams = Math.max(...streamCounts);
  const prompts = Array.from({ length: maxStreams }, () => Array.from({ length: PROMPT }, () => 3 + rng.int(m.config.vocabSize - 3)));
  const options = { ...DEFAULT_OPTIONS, maxNewTokens: NEW, eosTokenIds: [] };
  const schedulers = new Map([1, ...streamCounts].map((n) => [n, new BatchScheduler(m, { maxBatchSize: n, maxKvTokens: n * (PROMPT + NEW), queueCapacity: n })]));
  /** One round of n streams submitted at once: aggregate tokens/s. */
  const round = async (n: number) => {
    let tokens = 0;
    const t0 = performance.now();
    await Promise.all(prompts.slice(0, n).map((p) => schedulers.get(n)!.generate(null, [p], options, { onToken: () => void tokens++ })));
    return tokens / ((performance.now() - t0) / 1000);
  };
  for (const n of streamCounts) {
    await round(1), await round(n); // warm-up
    const single: number[] = [], many: number[] = [];
    for (let k = 0; k < pairs; k++) {
      // alternate which goes first, so that neither always follows the other
      if (k % 2) many.push(await round(n)), single.push(await round(1));
      else single.push(await round(1)), many.push(await round(n));
    }
    const ratios = many.map((x, k) => x / single[k]!);
    cases.push({
      streams: n, pairs, ratio_median: Number(median(ratios).toFixed(2)), ratios: ratios.map((r) => Number(r.toFixed(2))),
      one_stream_tokens_per_s: Number(median(single).toFixed(1)), streams_tokens_per_s: Number(median(many).toFixed(1)),
    });
    console.error(`${model}: ${n} streams / 1 stream, median of ${pairs} pairs: ${cases.at(-1)!.ratio_median}x`);
  }
});

console.log(`\n${model}, ours (cpu, ${be.describe()}, ${layout} weights); machine: ${started}; JSON: ${jsonPath}`);
console.log('| streams | median ratio to 1 stream | per pair | 1 stream tok/s (median) | N streams tok/s (median) |');
console.log('| ------- | ------------------------ | -------- | ----------------------- | ------------------------ |');
for (const c of cases) console.log(`| ${c.streams} | ${c.ratio_median}x | ${c.ratios.join(' ')} | ${c.one_stream_tokens_per_s} | ${c.streams_tokens_per_s} |`);
await writeJson(jsonPath, { machine: started, model, backend: be.describe(), layout, prompt_tokens: PROMPT, new_tokens: NEW, cases });
process.exit(0);
