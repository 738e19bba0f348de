// One case of bench/serve-throughput.ts, in its own process: `streams` concurrent greedy generations of
// `newTokens` tokens (EOS ignored), each from its own random prompt, all submitted at once, on our batch
// scheduler (cpu backend, in process, no HTTP) or on llama.cpp (node-llama-cpp: one context with `streams`
// sequences, evaluated together in its batches). A server's steady state: a warm-up round of the same shape first
// (compiled code, step buffers), then ROUNDS timed rounds; prints one JSON line with the median round's timings.
// Not the driver.
//   node --import tsx bench/serve-case.ts '<json: ServeCase>'

import { CpuBackend } from '../src/backends/native/cpu.ts';
import { loadCpuAddon } from '../src/backends/native/cpu-addon.ts';
import { Rng } from '../src/engine/random.ts';
import { DEFAULT_OPTIONS } from '../src/generate/options.ts';
import { BatchScheduler } from '../src/generate/scheduler.ts';
import { loadModel } from '../src/model/load.ts';
import { packForInference } from '../src/model/pack.ts';

export interface ServeCase {
  model: string; // label
  dir: string; // HF folder
  gguf: string; // its GGUF export (bf16)
  engine: 'ours' | 'llama.cpp';
  streams: number;
  promptTokens: number;
  newTokens: number;
  threads: number;
  vocabSize: number;
}

const c = JSON.parse(process.argv[2]!) as ServeCase;
const rng = new Rng(11);
const prompts = Array.from({ length: c.streams }, () => Array.from({ length: c.promptTokens }, () => 3 + rng.int(c.vocabSize - 3)));

const ROUNDS = 3;

type Stream = (onToken: () => void) => Promise<void>;
/** Each stream's token arrival times (ms since the round's start), and the round's wall time. */
type Round = { arrivals: number[][]; seconds: number };

async function timeStreams(streams: Stream[]): Promise<Round> {
  const arrivals = streams.map((): number[] => []);
  const t0 = performance.now();
  await Promise.all(streams.map((run, i) => run(() => arrivals[i]!.push(performance.now() - t0))));
  return { arrivals, seconds: (performance.now() - t0) / 1000 };
}

/** A warm-up round of the case, then ROUNDS timed ones; `stream(i, n, onToken)` runs stream i for n tokens. */
async function rounds(stream: (i: number, n: number, onToken: () => void) => Promise<void>): Promise<Round[]> {
  await Promise.all(prompts.map((_, i) => stream(i, c.newTokens, () => undefined)));
  const out: Round[] = [];
  for (let k = 0; k < ROUNDS; k++) out.push(await timeStreams(prompts.map((_, i) => (onToken) => stream(i, c.newTokens, onToken))));
  return out;
}

async function ours(): Promise<{ rounds: Round[]; details: string }> {
  const addon = loadCpuAddon();
  if ('unavailable' in addon) throw new Error(`cpu backend: ${addon.unavailable}`);
  const be = new CpuBackend(addon);
  const model = await loadModel(be, c.dir, { dtype: 'bf16' });
  packForInference(model); // as serve holds it
  const options = { ...DEFAULT_OPTIONS, maxNewTokens: c.newTokens, eosTokenIds: [] };
  const s = new BatchScheduler(model, { maxBatchSize: c.streams, maxKvTokens: c.streams * (c.promptTokens + c.newTokens), queueCapacity: c.streams });
  const stream = (i: number, n: number, onToken: () => void) => s.generate(null, [prompts[i]!], { ...options, maxNewTokens: n }, { onToken: () => void onToken() }).then(() => undefined);
  return { rounds: await rounds(stream), details: be.describe() };
}

async function llamaCpp(): Promise<{ rounds: Round[]; details: string }> {
  const { getLlama } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  const model = await llama.loadModel({ modelPath: c.gguf });
  const context = await model.createContext({
    contextSize: c.promptTokens + c.newTokens + 8, sequences: c.streams, threads: c.threads, batchSize: Math.max(512, c.streams * c.promptTokens),
  });
  const sequences = Array.from({ length: c.streams }, () => context.getSequence());
  const stream = async (i: number, n: number, onToken: () => void) => {
    let count = 0;
    for await (const _token of sequences[i]!.evaluate(prompts[i] as never, { temperature: 0 })) {
      onToken();
      if (++count === n) break;
    }
    await sequences[i]!.clearHistory();
  };
  const r = await rounds(stream);
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  return { rounds: r, details: `llama.cpp (node-llama-cpp), ${c.threads} threads, ${c.streams} sequences in one context` };
}

const { rounds: all, details } = c.engine === 'llama.cpp' ? await llamaCpp() : await ours();
const tokensOf = (r: Round) => r.arrivals.reduce((n, a) => n + a.length, 0);
const rate = (r: Round) => tokensOf(r) / r.seconds;
const r = [...all].sort((a, b) => rate(a) - rate(b))[all.length >> 1]!; // the median round
console.log(JSON.stringify({
  model: c.model, engine: c.engine, streams: c.streams, details, tokens: tokensOf(r), seconds: r.seconds,
  rounds_tokens_per_s: all.map((x) => Number(rate(x).toFixed(1))),
  ttft_ms: r.arrivals.map((a) => a[0]!),
  itl_ms: r.arrivals.flatMap((a) => a.slice(1).map((t, i) => t - a[i]!)),
  peak_rss_gib: Number((process.resourceUsage().maxRSS / 2 ** 20).toFixed(2)),
}));
