// Data order: the seeded train/validation split, epoch shuffles, transformers' length-grouped order,
// and cutting an order into batches.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import { lengthGroupedOrder, shuffledOrder, toBatches } from '../../../src/data/batches.ts';
import { splitTrainVal } from '../../../src/data/split.ts';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const sorted = (a: number[]) => [...a].sort((x, y) => x - y);

test('splitTrainVal: a seeded partition, the same for the same seed', () => {
  const items = range(100);
  const a = splitTrainVal(items, 20, 42);
  assert.equal(a.val.length, 20);
  assert.equal(a.train.length, 80);
  assert.deepEqual(sorted([...a.train, ...a.val]), items);
  assert.deepEqual(splitTrainVal(items, 20, 42), a);
  assert.notDeepEqual(splitTrainVal(items, 20, 7).val, a.val);
  assert.notDeepEqual(a.train, sorted(a.train), 'the training part comes out shuffled');
  assert.equal(splitTrainVal(items, 0.25, 1).val.length, 25, 'a fraction of the data');
  assert.equal(splitTrainVal(items, 0.001, 1).val.length, 1, 'fractions round up');
  assert.deepEqual(splitTrainVal(items, 0, 1), { train: items, val: [] });
  for (const bad of [100, 250, -1, 2.5]) assert.throws(() => splitTrainVal(items, bad, 1), UserError, String(bad));
});

test('shuffledOrder: a seeded permutation', () => {
  const order = shuffledOrder(1000, 3);
  assert.deepEqual(sorted(order), range(1000));
  assert.deepEqual(shuffledOrder(1000, 3), order);
  assert.notDeepEqual(shuffledOrder(1000, 4), order);
});

test('lengthGroupedOrder: megabatches of 50 batches sorted longest first, the longest example first of all', () => {
  const lengths = shuffledOrder(2000, 9).map((i) => 10 + (i % 300));
  const batchSize = 8;
  const order = lengthGroupedOrder(lengths, batchSize, 5);
  assert.deepEqual(sorted(order), range(2000));
  assert.equal(lengths[order[0]!], Math.max(...lengths));
  const mega = 50 * batchSize; // min(2000 / 32, 50) = 50 batches per megabatch
  for (let start = 0; start < order.length; start += mega) {
    const lens = order.slice(start + 1, start + mega).map((i) => lengths[i]!); // the first may have been swapped
    for (let k = 1; k < lens.length; k++) assert.ok(lens[k - 1]! >= lens[k]!, `megabatch at ${start} is sorted longest first`);
  }
  assert.deepEqual(lengthGroupedOrder(lengths, batchSize, 5), order);
  const small = lengthGroupedOrder([3, 1, 2], 4, 1); // fewer than 4 batches: one megabatch of one batch
  assert.deepEqual(small.map((i) => [3, 1, 2][i]), [3, 2, 1]);
  assert.deepEqual(lengthGroupedOrder([], 4, 1), []);
});

test('toBatches: consecutive slices, with or without the short last one', () => {
  assert.deepEqual(toBatches([4, 2, 0, 1, 3], 2), [[4, 2], [0, 1], [3]]);
  assert.deepEqual(toBatches([4, 2, 0, 1, 3], 2, true), [[4, 2], [0, 1]]);
});
