// One case of bench/serve-throughput.ts, in its own process: `streams` concurrent greedy generations of
// `newTokens` tokens (EOS ignored), each from its own random prompt, all submitted at once, on our batch
// scheduler (cpu backend, in process, no HTTP) or on llama.cpp (node-llama-cpp: one context with `streams`
// sequences, evaluated together in its batches). Prints one JSON line of timings. Not the driver.
//   node --import tsx bench/serve-case.ts '<json: ServeCase>'

import { CpuBackend } from '../src/backends/native/cpu.ts';
import { loadCpuAddon } from '../src/backends/native/cpu-addon.ts';
import { Rng } from '../src/engine/random.ts';
import { DEFAULT_OPTIONS } from '../src/generate/options.ts';
import { BatchScheduler } from '../src/generate/scheduler.ts';
import { loadModel } from '../src/model/load.ts';

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

/** Each stream's token arrival times (ms since the start), and the run's wall time. */
type Stream = (onToken: () => void) => Promise<void>;

async function timeStreams(streams: Stream[]): Promise<{ arrivals: number[][]; seconds: number }> {
  const arrivals = streams.map((): number[] => []);
  const t0 = performance.now();
  await Promise.all(streams.map((run, i) => run(() => arrivals[i]!.push(performance.now() - t0))));
  return { arrivals, seconds: (performance.now() - t0) / 1000 };
}

async function ours(): Promise<{ arrivals: number[][]; seconds: number; details: string }> {
  const addon = loadCpuAddon();
  if ('unavailable' in addon) throw new Error(`cpu backend: ${addon.unavailable}`);
  const be = new CpuBackend(addon);
  const model = await loadModel(be, c.dir, { dtype: 'bf16' });
  const options = { ...DEFAULT_OPTIONS, maxNewTokens: c.newTokens, eosTokenIds: [] };
  const s = new BatchScheduler(model, { maxBatchSize: c.streams, maxKvTokens: c.streams * (c.promptTokens + c.newTokens), queueCapacity: c.streams });
  await s.generate(null, [prompts[0]!], { ...options, maxNewTokens: 4 }); // warm-up
  const r = await timeStreams(prompts.map((p) => (onToken) => s.generate(null, [p], options, { onToken: () => void onToken() }).then(() => undefined)));
  return { ...r, details: be.describe() };
}

async function llamaCpp(): Promise<{ arrivals: number[][]; seconds: number; details: string }> {
  const { getLlama } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  const model = await llama.loadModel({ modelPath: c.gguf });
  const context = await model.createContext({
    contextSize: c.promptTokens + c.newTokens + 8, sequences: c.streams, threads: c.threads, batchSize: Math.max(512, c.streams * c.promptTokens),
  });
  const sequences = Array.from({ length: c.streams }, () => context.getSequence());
  const generate = async (i: number, n: number, onToken: () => void) => {
    let count = 0;
    for await (const _token of sequences[i]!.evaluate(prompts[i] as never, { temperature: 0 })) {
      onToken();
      if (++count === n) break;
    }
    await sequences[i]!.clearHistory();
  };
  await generate(0, 4, () => undefined); // warm-up
  const r = await timeStreams(prompts.map((_, i) => (onToken) => generate(i, c.newTokens, onToken)));
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  return { ...r, details: `llama.cpp (node-llama-cpp), ${c.threads} threads, ${c.streams} sequences in one context` };
}

const r = c.engine === 'llama.cpp' ? await llamaCpp() : await ours();
const tokens = r.arrivals.reduce((n, a) => n + a.length, 0);
console.log(JSON.stringify({
  model: c.model, engine: c.engine, streams: c.streams, details: r.details, tokens, seconds: r.seconds,
  ttft_ms: r.arrivals.map((a) => a[0]!),
  itl_ms: r.arrivals.flatMap((a) => a.slice(1).map((t, i) => t - a[i]!)),
  peak_rss_gib: Number((process.resourceUsage().maxRSS / 2 ** 20).toFixed(2)),
}));
