// The logits processors and token choice, on small hand-checked score vectors (HF's definitions).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../../src/engine/random.ts';
import { optionsFromSettings, strategyOf } from '../../../src/generate/options.ts';
import { repetitionPenalty, topK, topP } from '../../../src/generate/processors.ts';
import { argmax, logSoftmax, sample } from '../../../src/generate/sampling.ts';

test('repetition penalty divides positive scores and multiplies negative ones, once per token', () => {
  const s = Float32Array.from([2, -2, 1]);
  repetitionPenalty(s, [0, 1, 0], 2);
  assert.deepEqual([...s], [1, -4, 1]);
});

test('top-k keeps the k best and everything tied with the k-th', () => {
  const s = Float32Array.from([1, 3, 3, 2]);
  topK(s, 1);
  assert.deepEqual([...s], [-Infinity, 3, 3, -Infinity]);
  const t = Float32Array.from([1, 3, 0, 2]);
  topK(t, 2);
  assert.deepEqual([...t], [-Infinity, 3, -Infinity, 2]);
});

test('top-p removes the least likely tokens whose cumulative mass stays within 1 - p, keeping the best', () => {
  const s = Float32Array.from([0.5, 0.3, 0.15, 0.05].map(Math.log));
  topP(s, 0.75);
  assert.deepEqual([...s].map((x) => x === -Infinity), [false, false, true, true]);
  const one = Float32Array.from([0.9, 0.1].map(Math.log));
  topP(one, 0.01);
  assert.deepEqual([...one].map((x) => x === -Infinity), [false, true]);
});

test('top-p agrees with a full ascending sort and cumulative sum (HF\'s algorithm), also when many tokens stay', () => {
  const rng = new Rng(11);
  for (const [V, spread, p] of [[50, 4, 0.9], [3000, 0.01, 0.5], [3000, 3, 0.95], [500, 1, 0.3]] as const) {
    const scores = Float32Array.from({ length: V }, () => rng.normal() * spread);
    const want = scores.slice();
    const order = Array.from(want.keys()).sort((a, b) => want[a]! - want[b]!);
    const probs = order.map((i) => Math.exp(want[i]!));
    const total = probs.reduce((x, y) => x + y, 0);
    let cumulative = 0;
    order.forEach((id, j) => {
      cumulative += probs[j]! / total;
      if (cumulative <= 1 - p && j < V - 1) want[id] = -Infinity;
    });
    topP(scores, p);
    assert.deepEqual([...scores].map((x) => x === -Infinity), [...want].map((x) => x === -Infinity), `V ${V} p ${p}`);
  }
});

test('argmax takes the first maximum; sampling follows softmax and the seed', () => {
  assert.equal(argmax(Float32Array.from([1, 5, 5, 0])), 1);
  const scores = Float32Array.from([Math.log(0.7), Math.log(0.3), -Infinity]);
  const draw = (seed: number) => {
    const rng = new Rng(seed);
    return Array.from({ length: 4000 }, () => sample(scores, rng));
  };
  const a = draw(7);
  assert.deepEqual(a, draw(7));
  assert.ok(!a.includes(2));
  const share = a.filter((x) => x === 0).length / a.length;
  assert.ok(Math.abs(share - 0.7) < 0.03, `share ${share}`);
});

test('log-softmax normalises', () => {
  const s = Float32Array.from([1, 2, 3]);
  logSoftmax(s);
  assert.ok(Math.abs(s.reduce((sum, x) => sum + Math.exp(x), 0) - 1) < 1e-6);
});

test('front-end settings: beams > 1 is beam search whatever the temperature, else temperature 0 greedy, otherwise sampling', () => {
  const u = { maxNewTokens: 4, temperature: 0.1, topP: 0.75, topK: 40, numBeams: 4, repetitionPenalty: 1, seed: 0, stop: [] };
  const ids = { eosTokenIds: [2], padTokenId: 0 };
  assert.equal(strategyOf(optionsFromSettings(u, ids)), 'beam');
  assert.equal(strategyOf(optionsFromSettings({ ...u, temperature: 0 }, ids)), 'beam'); // the seed: num_beams=4 without do_sample
  assert.equal(strategyOf(optionsFromSettings({ ...u, temperature: 0, numBeams: 1 }, ids)), 'greedy');
  assert.equal(strategyOf(optionsFromSettings({ ...u, numBeams: 1 }, ids)), 'sample');
});
