// Continuous batching against single-request generation, on the llama-mha fixture (js and cpu): requests of
// different lengths that join a running batch at different steps, wait for a slot, finish early (max tokens,
// EOS) or are cancelled mid-stream get, token for token, what each gets alone (a cancelled one: a prefix);
// prompts longer than PREFILL_CHUNK are prefilled over several steps; base and two adapters share one batch;
// a beam search runs beside the batch; a full queue refuses at once. Prompts that arrive while no row decodes go
// in one step (up to PREFILL_IDLE_CHUNK tokens), a prompt joining decoding rows in chunks of PREFILL_CHUNK.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { QueueFullError } from '../../../src/generate/admission.ts';
import { generate } from '../../../src/generate/generate.ts';
import type { Generated } from '../../../src/generate/hooks.ts';
import { DEFAULT_OPTIONS, type GenerationOptions } from '../../../src/generate/options.ts';
import { BatchScheduler, PREFILL_CHUNK, PREFILL_IDLE_CHUNK } from '../../../src/generate/scheduler.ts';
import { Rng } from '../../../src/engine/random.ts';
import type { LoraUse, Model } from '../../../src/model/llama.ts';
import { loadModel } from '../../../src/model/load.ts';
import { createLoraAdapter } from '../../../src/model/lora.ts';
import { loadLoraAdapter } from '../../../src/model/lora-io.ts';
import { packForInference } from '../../../src/model/pack.ts';
import { testBackends } from '../../helpers/backends.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';

const MODEL = ['fixtures', 'models', 'llama-mha'];
const greedy: GenerationOptions = { ...DEFAULT_OPTIONS, maxNewTokens: 10 };

function randomPrompt(rng: Rng, length: number, V: number): number[] {
  return Array.from({ length }, () => 3 + rng.int(V - 3));
}

/** A second adapter with random A and B on other projections than the fixture's, so its outputs differ. */
function randomAdapter(m: Model, seed: number): LoraUse {
  const adapter = createLoraAdapter(m.be, m.config, { r: 4, alpha: 8, dropout: 0, targets: ['k_proj', 'o_proj', 'up_proj'], useRslora: false });
  const rng = new Rng(seed);
  for (const layer of adapter.layers) for (const pair of layer.values()) {
    for (const t of [pair.A, pair.B]) m.be.upload(t, Float32Array.from({ length: t.size }, () => rng.normal() * 0.3));
  }
  return { adapter, dropout: 0, seed: 0 };
}

interface Case {
  prompt: number[];
  lora: LoraUse | null;
  options: GenerationOptions;
  cancelAfter?: number; // abort after this many tokens
  joinAt?: number; // submitted once request 0 has this many tokens
}

const backends = testBackends();
// a bf16 base on cpu decodes with bf16 projection inputs: steps of more than 16 tokens (a prompt chunk beside decoding
// rows) take the GEMM, single rows the matrix-vector kernel; the tokens must still be those of the request alone. The
// same with the weights packed as serve holds them (model/pack.ts; on CPUs with AVX512_BF16).
const cpus = backends.filter((b) => b.name === 'cpu');
const runs = [
  ...backends.map((b) => ({ backend: b, dtype: undefined, pack: false })),
  ...cpus.map((b) => ({ backend: b, dtype: 'bf16' as const, pack: false })),
  ...cpus.map((b) => ({ backend: b, dtype: 'bf16' as const, pack: true })),
];

for (const { backend, dtype, pack } of runs) {
  test(`${backend.name}${dtype ? `, ${pack ? 'packed ' : ''}bf16 base` : ''}: requests joining, finishing, waiting and cancelled mid-stream get their single-request tokens`, async (t) => {
    if (!needShared(t, ...MODEL, 'model.safetensors')) return;
    const dir = sharedPath(...MODEL);
    const m = await loadModel(backend.make(), dir, { dtype });
    if (pack && packForInference(m) === 0) return void t.skip('this CPU has no AVX512_BF16: nothing is packed');
    const V = m.config.vocabSize;
    const fixture: LoraUse = { adapter: loadLoraAdapter(m.be, m.config, join(dir, 'adapter')), dropout: 0, seed: 0 };
    const other = randomAdapter(m, 7);
    const rng = new Rng(3);
    const long = PREFILL_CHUNK + 20;
    const cases: Case[] = [
      { prompt: randomPrompt(rng, 5, V), lora: null, options: { ...greedy, maxNewTokens: 14 } },
      { prompt: randomPrompt(rng, long, V), lora: fixture, options: greedy },
      { prompt: randomPrompt(rng, 12, V), lora: other, options: { ...greedy, maxNewTokens: 3 } },
      { prompt: randomPrompt(rng, 2, V), lora: null, options: greedy, cancelAfter: 4 },
      { prompt: randomPrompt(rng, 30, V), lora: fixture, options: { ...greedy, repetitionPenalty: 1.3 }, joinAt: 2 },
      { prompt: randomPrompt(rng, long + 9, V), lora: other, options: greedy, joinAt: 5 },
      { prompt: randomPrompt(rng, 7, V), lora: null, options: { ...greedy, doSample: true, temperature: 1.3, topK: 20, seed: 11 }, joinAt: 5 },
      { prompt: randomPrompt(rng, 9, V), lora: fixture, options: { ...greedy, maxNewTokens: 12 }, joinAt: 1 },
    ];
    const alone: Generated[] = [];
    for (const c of cases) alone.push((await generate(m, c.lora, [c.prompt], c.options))[0]!);
    // EOS: request 1 stops at its third token's id
    cases[1]!.options = { ...greedy, eosTokenIds: [alone[1]!.tokens[2]!] };
    alone[1] = (await generate(m, cases[1]!.lora, [cases[1]!.prompt], cases[1]!.options))[0]!;
    assert.equal(alone[1]!.finishReason, 'stop');
    assert.notDeepEqual(alone[4]!.tokens, (await generate(m, null, [cases[4]!.prompt], cases[4]!.options))[0]!.tokens, 'the fixture adapter changes the tokens');
    assert.notDeepEqual(alone[5]!.tokens, (await generate(m, null, [cases[5]!.prompt], cases[5]!.options))[0]!.tokens, 'the random adapter changes the tokens');

    // five slots for eight requests: the last to come wait for a slot
    const s = new BatchScheduler(m, { maxBatchSize: 5, maxKvTokens: 4096, queueCapacity: 8 });
    const results: Promise<Generated[]>[] = [];
    const submit = (i: number) => {
      const c = cases[i]!;
      const controller = new AbortController();
      let n = 0;
      results[i] = s.generate(c.lora, [c.prompt], c.options, {
        signal: controller.signal,
        onToken: () => {
          n++;
          if (n === c.cancelAfter) controller.abort();
          if (i === 0) cases.forEach((d, j) => d.joinAt === n && submit(j));
        },
      });
    };
    cases.forEach((c, i) => c.joinAt === undefined && submit(i));
    for (let i = 0; i < cases.length; i++) {
      const [got] = await results[i]!;
      if (cases[i]!.cancelAfter) {
        assert.equal(got!.finishReason, 'cancelled', `request ${i}`);
        assert.ok(got!.tokens.length >= cases[i]!.cancelAfter! && got!.tokens.length < alone[i]!.tokens.length, `request ${i} stopped mid-stream`);
        assert.deepEqual(got!.tokens, alone[i]!.tokens.slice(0, got!.tokens.length), `request ${i} (cancelled)`);
      } else {
        assert.deepEqual(got, alone[i], `request ${i}`);
      }
    }
    assert.equal(s.busy, false);
    s.dispose();
  });
}

for (const backend of backends) {
  test(`${backend.name}: a beam search beside the running batch, n choices in one request, and a full queue`, async (t) => {
    if (!needShared(t, ...MODEL, 'model.safetensors')) return;
    const m = await loadModel(backend.make(), sharedPath(...MODEL));
    const rng = new Rng(5);
    const p1 = randomPrompt(rng, 6, m.config.vocabSize), p2 = randomPrompt(rng, 15, m.config.vocabSize);
    const beams = { ...greedy, numBeams: 3 };
    const sampled = { ...greedy, doSample: true, temperature: 1.5, seed: 4 };
    const want = [await generate(m, null, [p1], beams), await generate(m, null, [p2, p2, p1], sampled)];
    // the beams hold 3 of 4 slots, so the 3 sampled rows wait; the queue holds one request
    const s = new BatchScheduler(m, { maxBatchSize: 4, maxKvTokens: 1024, queueCapacity: 1 });
    const got = [s.generate(null, [p1], beams), s.generate(null, [p2, p2, p1], sampled)];
    assert.equal(s.length, 1);
    assert.throws(() => s.generate(null, [p2], greedy), QueueFullError);
    assert.deepEqual(await Promise.all(got), want);
    assert.deepEqual(await s.generate(null, [p1], greedy), await generate(m, null, [p1], greedy));
    s.dispose();
  });
}

test('prompts arriving at an idle batch go in one step; one joining decoding rows comes in chunks', async (t) => {
  if (!needShared(t, ...MODEL, 'model.safetensors')) return;
  const m = await loadModel(backends[0]!.make(), sharedPath(...MODEL));
  const steps: number[] = []; // tokens per step: each decode step embeds its tokens once
  const embed = m.be.embeddingForward.bind(m.be);
  m.be.embeddingForward = (out, ids, table, N, C) => (steps.push(N), embed(out, ids, table, N, C));
  const rng = new Rng(9), V = m.config.vocabSize;
  const [a, b, c] = [100, 60, 100].map((n) => randomPrompt(rng, n, V));
  const s = new BatchScheduler(m, { maxBatchSize: 4, maxKvTokens: 4096, queueCapacity: 4 });
  let joined: Promise<Generated[]> | undefined;
  const onToken = () => void (joined ??= s.generate(null, [c], { ...greedy, maxNewTokens: 2 }));
  await Promise.all([s.generate(null, [a], { ...greedy, maxNewTokens: 6 }, { onToken }), s.generate(null, [b], { ...greedy, maxNewTokens: 6 })]);
  await joined;
  // by hand: a and b (160 tokens, under PREFILL_IDLE_CHUNK) in the first step; c joins once a has a token, and
  // comes in 64 + 36 tokens beside the two decoding rows
  assert.ok(160 <= PREFILL_IDLE_CHUNK && 100 > PREFILL_CHUNK);
  assert.deepEqual(steps.slice(0, 3), [160, 2 + PREFILL_CHUNK, 2 + 100 - PREFILL_CHUNK], `steps ${steps.join(' ')}`);
  assert.ok(steps.slice(3).every((n) => n <= 3), `then only decoding rows: ${steps.join(' ')}`);
  s.dispose();
});
