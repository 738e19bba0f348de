// Which examples each optimizer step sees: the Trainer's micro-batch grouping, and seeded orders.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { epochPlan, scheduledSteps, stepsPerEpoch } from '../../../src/train/plan.ts';

const lengths = (n: number) => Array.from({ length: n }, (_, i) => 10 + (i % 7));

test('file order: micro-batches in order, grouped by accumulation, the last step takes the leftovers', () => {
  const s = { microBatchSize: 4, gradAccumSteps: 2, order: 'file' as const, seed: 0 };
  assert.equal(stepsPerEpoch(24, s), 3);
  assert.equal(stepsPerEpoch(21, s), 3); // 6 micro-batches, the last of 1 example
  assert.equal(stepsPerEpoch(17, s), 3); // 5 micro-batches: the last step has one
  const plan = epochPlan(lengths(17), s, 0);
  assert.deepEqual(plan[0], [[0, 1, 2, 3], [4, 5, 6, 7]]);
  assert.deepEqual(plan[2], [[16]]);
  assert.deepEqual(epochPlan(lengths(17), s, 1), plan);
});

test('the run length counts whole accumulation groups only (899 examples, 8 x 2, 3 epochs = 168 steps)', () => {
  const s = { microBatchSize: 8, gradAccumSteps: 2 };
  assert.equal(stepsPerEpoch(899, s), 57);
  assert.equal(scheduledSteps(899, s, 3), 168);
  assert.equal(scheduledSteps(24, { microBatchSize: 4, gradAccumSteps: 2 }, 2), 6);
  assert.equal(scheduledSteps(3, s, 2), 2);
});

test('shuffled order: a permutation per epoch, the same for the same seed and epoch', () => {
  const s = { microBatchSize: 3, gradAccumSteps: 2, order: 'shuffle' as const, seed: 7 };
  const flat = (p: number[][][]) => p.flat(2);
  const e0 = flat(epochPlan(lengths(20), s, 0));
  assert.deepEqual([...e0].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
  assert.deepEqual(flat(epochPlan(lengths(20), s, 0)), e0);
  assert.notDeepEqual(flat(epochPlan(lengths(20), s, 1)), e0);
  assert.notDeepEqual(flat(epochPlan(lengths(20), { ...s, seed: 8 }, 0)), e0);
});

test('length-grouped order starts with the longest example', () => {
  const L = lengths(40);
  const plan = epochPlan(L, { microBatchSize: 2, gradAccumSteps: 2, order: 'length', seed: 1 }, 0);
  assert.equal(L[plan[0]![0]![0]!], Math.max(...L));
  assert.equal(plan.flat(2).length, 40);
});
