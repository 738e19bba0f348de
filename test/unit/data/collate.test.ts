// The collator (left padding to a multiple of 8, labels padded with -100).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { collate } from '../../../src/data/collate.ts';
import { IGNORE_INDEX as M } from '../../../src/data/tokenize.ts';

const example = (input_ids: number[], labels = input_ids) => ({ input_ids, labels, attention_mask: input_ids.map(() => 1) });

test('collate pads on the left to a multiple of 8 by default, with -100 labels and a zero mask', () => {
  const b = collate([example([1, 5, 6], [M, 5, 6]), example([1, 7, 8, 9, 10, 11, 12, 13, 14])], { padId: 0 });
  assert.equal(b.B, 2);
  assert.equal(b.T, 16);
  assert.deepEqual([...b.inputIds.subarray(0, 16)], [...Array(13).fill(0), 1, 5, 6]);
  assert.deepEqual([...b.attentionMask.subarray(0, 16)], [...Array(13).fill(0), 1, 1, 1]);
  assert.deepEqual([...b.labels.subarray(0, 16)], [...Array(13).fill(M), M, 5, 6]);
  assert.deepEqual([...b.inputIds.subarray(16)], [...Array(7).fill(0), 1, 7, 8, 9, 10, 11, 12, 13, 14]);
});

test('collate pads on the right, with the tokenizer\'s pad id, to any multiple', () => {
  const b = collate([example([1, 5]), example([1, 6, 7])], { padId: 9, padSide: 'right', padToMultipleOf: 1 });
  assert.equal(b.T, 3);
  assert.deepEqual([...b.inputIds], [1, 5, 9, 1, 6, 7]);
  assert.deepEqual([...b.labels], [1, 5, M, 1, 6, 7]);
  assert.deepEqual([...b.attentionMask], [1, 1, 0, 1, 1, 1]);
  assert.throws(() => collate([{ input_ids: [1, 2], labels: [1] }], { padId: 0 }), /2 input_ids but 1 labels/);
});
