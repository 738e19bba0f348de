// A load test of `serve` over HTTP on loopback, in this process so its memory can be read: 64 requests at once
// (completions and chat, base model and adapter, JSON and SSE, a quarter of them disconnecting mid-stream) on
// the trainer fixture. Every request not cancelled gets the greedy answer the same request gets alone, and
// memory comes back to where it was:
// - the backend's live allocations (bytes allocated and not yet freed, counted by wrapping alloc/free/freeArena)
//   equal their level before the load exactly (the KV cache is a pool freed when empty: blocks that cancelled
//   requests kept would hold it, and with --max_kv_tokens this tight would also fail requests soon);
// - V8's heap plus array buffers after a full GC stay within HEAP_TOLERANCE of their level before the load.
// Both levels are taken after a warm-up (each request alone, a burst of them together, and a step at the
// scheduler's largest: three rows decoding towards a KV length past any in the load while a prompt longer
// than PREFILL_CHUNK joins), so that the step buffers, which keep their high-water size, and compiled code
// already exist. The server is driven through HTTP only.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, test } from 'node:test';
import { selectBackend } from '../../src/backends/select.ts';
import type { Backend } from '../../src/engine/backend.ts';
import { BYTES_PER_ELEMENT } from '../../src/engine/dtype.ts';
import { PREFILL_CHUNK } from '../../src/generate/scheduler.ts';
import type { Tensor } from '../../src/engine/tensor.ts';
import { loadServerContext } from '../../src/server/load-context.ts';
import { startServer } from '../../src/server/server.ts';
import { needCpu } from '../helpers/cpu-backend.ts';
import { needShared, sharedPath } from '../helpers/shared.ts';
import { sseEvents, streamEvents, waitFor, writeScaledAdapter } from './serve-helper.ts';

const BASE = ['fixtures', 'trainer', 'base'];
const REQUESTS = 64;
const MAX_BATCH = 4;
const DISCONNECT_MAX_TOKENS = 60;
const MAX_KV_TOKENS = 24 * 32; // 24 blocks: room for the largest step below, not for KV blocks that a request failed to give back
const HEAP_TOLERANCE = 4 * 2 ** 20; // bytes: GC noise measured at well under 1 MiB; one leaked logits row per request would be 8 MiB
const greedy = { max_tokens: 6, temperature: 0 };
const completion = (model: string, prompt: string) => ({ path: '/v1/completions', body: { model, prompt, ...greedy } as Record<string, unknown> });
const chat = (model: string, content: string) => ({ path: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content }], ...greedy } as Record<string, unknown> });
const DISTINCT = [
  completion('base', 'Hello'), completion('strong', 'Hello'), completion('base', 'Name three colors.'), completion('strong', 'Why is the sky blue?'),
  completion('base', 'Once upon a time'), completion('strong', 'Good morning'), completion('base', 'Good morning'), chat('strong', 'Write a poem.'),
]; // distinct greedy answers, so a mix-up shows (this random model answers every chat prompt with newlines: one chat only)
type Mode = 'json' | 'stream' | 'disconnect';
const MODES: Mode[] = ['json', 'stream', 'disconnect', 'stream'];

const work = mkdtempSync(join(tmpdir(), 'serve-load-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** Counts the bytes `be` has allocated and not freed, by wrapping its memory calls on this instance. */
function countLiveBytes(be: Backend): () => number {
  const live = new Map<Tensor, number>();
  const { alloc, free, freeArena } = { alloc: be.alloc.bind(be), free: be.free.bind(be), freeArena: be.freeArena.bind(be) };
  be.alloc = (shape, dtype, arena) => {
    const t = alloc(shape, dtype, arena);
    live.set(t, t.size * BYTES_PER_ELEMENT[dtype]);
    return t;
  };
  be.free = (t) => {
    live.delete(t);
    free(t);
  };
  be.freeArena = (arena) => {
    for (const t of live.keys()) if (t.arena === arena) live.delete(t);
    freeArena(arena);
  };
  return () => [...live.values()].reduce((a, b) => a + b, 0);
}

function heapBytes(gc: () => void): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

interface Answer { text: string; finish: string | null }
interface Choice { text?: string; message?: { content: string }; delta?: { content?: string }; finish_reason: string | null }

/** One request in `mode`; null when it disconnected on purpose after its first text. */
async function ask(url: string, request: (typeof DISTINCT)[number], mode: Mode): Promise<Answer | null> {
  const stream = mode !== 'json';
  const body = mode === 'disconnect' ? { ...request.body, max_tokens: DISCONNECT_MAX_TOKENS, ignore_eos: true, stream } : { ...request.body, stream };
  const leave = new AbortController();
  const r = await fetch(url + request.path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal: leave.signal });
  if (mode === 'disconnect') {
    assert.equal(r.status, 200);
    for await (const e of streamEvents(r)) {
      if ((e as { choices?: Choice[] }).choices?.some((c) => c.text || c.delta?.content)) break;
    }
    leave.abort();
    return null;
  }
  const text = await r.text();
  assert.equal(r.status, 200, text);
  if (!stream) {
    const c = JSON.parse(text).choices[0] as Choice;
    return { text: c.text ?? c.message!.content, finish: c.finish_reason };
  }
  const events = sseEvents(text).slice(0, -1) as { choices: Choice[]; error?: { message: string } }[];
  assert.equal(events.find((e) => e.error)?.error?.message, undefined, 'an error event mid-stream');
  const choices = events.flatMap((c) => c.choices);
  return { text: choices.map((c) => c.text ?? c.delta?.content ?? '').join(''), finish: choices.at(-1)!.finish_reason };
}

/**
 * Drives the step buffers to their largest: MAX_BATCH - 1 rows decoding (the longest prompt of the load, more
 * new tokens than any row of it) while a prompt of PREFILL_CHUNK + 16 ids joins, so a step holds
 * MAX_BATCH - 1 + PREFILL_CHUNK tokens, the most the scheduler puts in one beside decoding rows.
 */
async function saturate(url: string): Promise<void> {
  const longest = { ...DISTINCT.at(-1)!.body, max_tokens: 2 * DISCONNECT_MAX_TOKENS, ignore_eos: true, stream: true };
  const streams = await Promise.all(Array.from({ length: MAX_BATCH - 1 }, async () => {
    const r = await fetch(url + DISTINCT.at(-1)!.path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(longest) });
    const events = streamEvents(r);
    await events.next();
    return events;
  }));
  const joining = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt: new Array(PREFILL_CHUNK + 16).fill(450), max_tokens: 1 }) });
  assert.equal(joining.status, 200);
  await Promise.all(streams.map(async (events) => {
    for await (const _ of events);
  }));
}

for (const backend of ['js', 'cpu'] as const) {
  test(`${backend}: 64 mixed requests at once are each answered as alone, and memory comes back`, async (t) => {
    if (!needShared(t, ...BASE, 'tokenizer.model') || (backend === 'cpu' && needCpu(t) === null)) return;
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const strong = join(work, `strong-${backend}`);
    writeScaledAdapter(sharedPath('fixtures', 'trainer', 'final_adapter'), strong, 4); // changes the greedy text (serve-adapter.test.ts)
    const be = selectBackend(backend, () => {});
    const liveBytes = countLiveBytes(be);
    const ctx = await loadServerContext({
      backend: be, baseModel: sharedPath(...BASE), loraWeights: [`strong=${strong}`], promptTemplate: 'alpaca',
      queueSize: REQUESTS, maxTokens: 2048, maxN: 8, maxBatchSize: MAX_BATCH, maxKvTokens: MAX_KV_TOKENS,
    });
    const log: string[] = [];
    const server = await startServer(ctx, '127.0.0.1', 0, { log: (line) => log.push(line) });
    t.after(() => server.shutdown());
    const idle = () => waitFor('the server to be idle', async () => {
      const h = await (await fetch(`${server.url}/health`)).json() as { running: boolean; waiting: number };
      return !h.running && h.waiting === 0;
    });

    const alone: Answer[] = [];
    for (const request of DISTINCT) alone.push((await ask(server.url, request, 'json'))!);
    assert.equal(new Set(alone.map((a) => a.text)).size, DISTINCT.length, `the answers alone are not all distinct, so a mix-up could hide: ${JSON.stringify(alone)}`);
    await Promise.all(DISTINCT.flatMap((request) => MODES.map((mode) => ask(server.url, request, mode))));
    await saturate(server.url);
    await idle();
    const liveBefore = liveBytes();
    const heapBefore = heapBytes(gc);
    const logBefore = log.length;

    const started = performance.now();
    const jobs = Array.from({ length: REQUESTS }, (_, i) => ({ i, request: DISTINCT[i % DISTINCT.length]!, mode: MODES[Math.floor(i / DISTINCT.length) % MODES.length]! }));
    const answers = await Promise.all(jobs.map((j) => ask(server.url, j.request, j.mode)));
    const seconds = (performance.now() - started) / 1000;
    for (const [k, j] of jobs.entries()) {
      if (j.mode !== 'disconnect') assert.deepEqual(answers[k], alone[j.i % DISTINCT.length], `request ${j.i} (${j.mode}) ${JSON.stringify(j.request.body)}`);
    }
    await idle();
    await waitFor('every request logged', async () => log.length - logBefore >= REQUESTS);
    const lines = log.slice(logBefore).filter((l) => / POST \/v1\//.test(l));
    assert.equal(lines.length, REQUESTS);
    assert.equal(lines.filter((l) => l.endsWith('(client closed)')).length, jobs.filter((j) => j.mode === 'disconnect').length);

    assert.equal(liveBytes(), liveBefore, 'backend allocations after the load (bytes) = before');
    const heapAfter = heapBytes(gc);
    t.diagnostic(`${backend}: ${REQUESTS} requests in ${seconds.toFixed(1)} s; backend live ${liveBefore} B before and after; heap + array buffers ${(heapBefore / 2 ** 20).toFixed(1)} -> ${(heapAfter / 2 ** 20).toFixed(1)} MiB`);
    assert.ok(heapAfter - heapBefore < HEAP_TOLERANCE, `heap + array buffers grew by ${((heapAfter - heapBefore) / 2 ** 20).toFixed(2)} MiB (tolerance ${HEAP_TOLERANCE / 2 ** 20} MiB)`);
  });
}
