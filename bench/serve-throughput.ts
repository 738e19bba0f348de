// Benchmark: serving throughput under concurrency. 1, 4, 8 and 16 concurrent greedy streams of 128 new tokens
// (32-token random prompts, all submitted at once) on our batch scheduler (cpu backend, bf16 weights) and on
// llama.cpp (node-llama-cpp, the same number of sequences in one context) running a bf16 GGUF export of the
// same weights, interleaved case by case; aggregate tokens/s, p50/p95 time to first token and inter-token
// latency. Prints a table last and writes JSON. Each case runs in its own process (serve-case.ts), with at most
// 5 minutes. llama.cpp runs on 1 thread unless asked: its threads spin while they wait, which a busy machine
// punishes (on a loaded 2-core machine its 2-thread runs were 100x slower than 1-thread ones).
//   node --import tsx bench/serve-throughput.ts [--models tiny-english,mid-134m] [--streams 1,4,8,16]
//        [--our_threads 1,2] [--llama_threads 1] [--json bench/results/serve-throughput.json]

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadLlamaConfig } from '../src/arch/llama-config.ts';
import { exportGguf } from '../src/export/export-gguf.ts';
import { flag } from './flags.ts';
import { benchModelDir } from './random-model.ts';
import type { ServeCase } from './serve-case.ts';

const here = dirname(fileURLToPath(import.meta.url));
const models = flag('models', 'tiny-english,mid-134m').split(',');
const streamCounts = flag('streams', '1,4,8,16').split(',').map(Number);
const jsonPath = resolve(flag('json', resolve(here, 'results', 'serve-throughput.json')));
const threads = Number(process.env.ALPACA_CPU_THREADS ?? availableParallelism());
const ourThreads = flag('our_threads', [...new Set([1, threads])].join(',')).split(',').map(Number);
const llamaThreads = flag('llama_threads', '1').split(',').map(Number);
const shared = process.env.ALPACA_SHARED_DIR ?? resolve(here, '..', '..', 'shared');
const tinyEnglish = join(shared, 'fixtures', 'pretrained', 'tiny-english');
if (!existsSync(tinyEnglish)) throw new Error(`${tinyEnglish} is missing: this benchmark needs ../shared beside the project`);
const PROMPT = 32, NEW = 128;

interface Result {
  model: string;
  engine: string;
  streams: number;
  threads: number;
  details: string;
  tokens: number;
  seconds: number;
  ttft_ms: number[];
  itl_ms: number[];
  peak_rss_gib: number;
}

const work = mkdtempSync(join(tmpdir(), 'bench-serve-'));
const results: Result[] = [];
const skipped: string[] = [];
const loadBefore = loadavg()[0]!;

function runCase(c: ServeCase): void {
  console.error(`${c.model}: ${c.streams} streams on ${c.engine}, ${c.threads} threads ...`);
  const p = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'serve-case.ts'), JSON.stringify(c)], {
    encoding: 'utf8', maxBuffer: 1 << 26, timeout: 300_000, env: { ...process.env, ALPACA_CPU_THREADS: String(c.threads) },
  });
  const line = p.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (p.status === 0 && line) {
    const r = { ...(JSON.parse(line) as Result), threads: c.threads };
    results.push(r);
    console.error(`  ${(r.tokens / r.seconds).toFixed(1)} tokens/s aggregate`);
  } else {
    skipped.push(`${c.model} ${c.engine} x${c.streams} (${c.threads} threads): ${p.error ? 'over 5 minutes' : p.stderr.trim().split('\n').slice(-2).join(' ')}`);
    console.error(`  failed: ${skipped.at(-1)}`);
  }
}

try {
  for (const model of models) {
    const dir = await benchModelDir(model, tinyEnglish, work);
    const gguf = join(work, `${model}-bf16.gguf`);
    await exportGguf({ baseModel: dir, outfile: gguf, outtype: 'bf16' });
    const vocabSize = loadLlamaConfig(dir).vocabSize;
    for (const streams of streamCounts) {
      const common = { model, dir, gguf, streams, promptTokens: PROMPT, newTokens: NEW, vocabSize };
      for (const t of ourThreads) runCase({ ...common, engine: 'ours', threads: t });
      for (const t of llamaThreads) runCase({ ...common, engine: 'llama.cpp', threads: t });
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};
const rate = (r: Result) => r.tokens / r.seconds;
/** The fastest run of an engine on a model at a stream count. */
const find = (model: string, engine: string, streams: number) => results.filter((r) => r.model === model && r.engine === engine && r.streams === streams)
  .sort((a, b) => rate(b) - rate(a))[0];
const summary = results.map((r) => ({
  model: r.model, engine: r.engine, streams: r.streams, threads: r.threads, tokens_per_s: Number(rate(r).toFixed(1)),
  ttft_p50_ms: Math.round(pct(r.ttft_ms, 50)), ttft_p95_ms: Math.round(pct(r.ttft_ms, 95)),
  itl_p50_ms: Number(pct(r.itl_ms, 50).toFixed(1)), itl_p95_ms: Number(pct(r.itl_ms, 95).toFixed(1)), peak_rss_gib: r.peak_rss_gib,
}));
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores, no GPU used; load average ${loadBefore.toFixed(1)} at start, ${loadavg()[0]!.toFixed(1)} at end (shared with other jobs)`;
mkdirSync(dirname(jsonPath), { recursive: true });
writeFileSync(jsonPath, JSON.stringify({ machine, threads, prompt_tokens: PROMPT, new_tokens: NEW, summary, skipped, details: [...new Set(results.map((r) => r.details))] }, null, 2) + '\n');

const rows = summary.map((s) => {
  const ref = s.engine === 'ours' ? find(s.model, 'llama.cpp', s.streams) : undefined;
  const single = results.find((r) => r.model === s.model && r.engine === s.engine && r.threads === s.threads && r.streams === 1);
  return [s.model, s.engine, String(s.threads), String(s.streams), s.tokens_per_s.toFixed(1), ref ? `${(s.tokens_per_s / rate(ref)).toFixed(2)}x` : '-',
    single ? `${(s.tokens_per_s / rate(single)).toFixed(2)}x` : '-', `${s.ttft_p50_ms} / ${s.ttft_p95_ms}`, `${s.itl_p50_ms} / ${s.itl_p95_ms}`];
});
const head = ['model', 'engine', 'threads', 'streams', 'tokens/s (all)', 'vs best llama.cpp', 'vs 1 stream', 'TTFT p50/p95 ms', 'ITL p50/p95 ms'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log(`\nConcurrent greedy streams, ${PROMPT}-token prompts + ${NEW} new tokens each, bf16 weights; JSON: ${jsonPath}`);
console.log(`machine: ${machine}`);
for (const s of skipped) console.log(`skipped: ${s}`);
console.log([line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n'));
