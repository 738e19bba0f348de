// Sequence packing (data/pack.ts): first fit by decreasing length, segment ids, masked first labels, padding as
// its own segment, and the counted targets equal to those of the same examples each in a row of its own.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { collate } from '../../../src/data/collate.ts';
import { packRows, packedBatches } from '../../../src/data/pack.ts';
import { IGNORE_INDEX as M } from '../../../src/data/tokenize.ts';
import { countTargets, segmentPositions, shiftTargets } from '../../../src/model/batch.ts';

const example = (input_ids: number[], labels = input_ids) => ({ input_ids, labels });

test('packRows: first fit, longest first, ties in input order; an example longer than the row is an error', () => {
  // lengths 3, 2, 4, 6, 1 into rows of 6: 6 -> row 0; 4 -> row 1; 3 -> row 2; 2 -> row 1 (4 + 2); 1 -> row 2
  assert.deepEqual(packRows([3, 2, 4, 6, 1], 6), [[3], [2, 1], [0, 4]]);
  assert.deepEqual(packRows([2, 2, 2], 4), [[0, 1], [2]]);
  assert.throws(() => packRows([3, 7], 6), /example 1 has 7 tokens, more than the packed row length 6/);
});

test('packedBatches: rows of rowLen, segment ids per example then padding, first labels masked, rowsPerBatch rows each', () => {
  const examples = [example([1, 2, 3]), example([1, 4], [M, 4]), example([1, 5, 6, 7]), example([1, 8, 9, 10, 11, 12])];
  const [b0, b1, ...rest] = packedBatches(examples, 6, 2, 0);
  assert.equal(rest.length, 0);
  // rows: [3] (6 tokens), [2, 1] (4 + 2), [0] (3)
  assert.deepEqual([b0!.B, b0!.T, b1!.B, b1!.T], [2, 6, 1, 6]);
  assert.deepEqual([...b0!.inputIds], [1, 8, 9, 10, 11, 12, 1, 5, 6, 7, 1, 4]);
  assert.deepEqual([...b0!.labels], [M, 8, 9, 10, 11, 12, M, 5, 6, 7, M, 4]);
  assert.deepEqual([...b0!.segmentIds], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2]);
  assert.deepEqual([...b1!.inputIds], [1, 2, 3, 0, 0, 0]);
  assert.deepEqual([...b1!.labels], [M, 2, 3, M, M, M]);
  assert.deepEqual([...b1!.attentionMask], [1, 1, 1, 0, 0, 0]);
  assert.deepEqual([...b1!.segmentIds], [1, 1, 1, 2, 2, 2], 'padding is a segment of its own');
  assert.deepEqual(segmentPositions(b0!.segmentIds, 6), [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 0, 1]);
  assert.deepEqual(segmentPositions(Int32Array.from([1, 1, 1, 1]), 2), [0, 1, 0, 1], 'each row starts at position 0');
});

test('packed rows count exactly the targets of the same examples each alone; left padding adds pad -> first-token targets', () => {
  const examples = [example([1, 2, 3], [M, M, 3]), example([1, 4, 5, 6]), example([1, 7], [M, 7]), example([1, 8, 9, 10, 11])];
  const alone = examples.reduce((n, e) => n + countTargets(shiftTargets(collate([e], { padId: 0, padToMultipleOf: 1 }))), 0);
  assert.equal(alone, 1 + 3 + 1 + 4);
  assert.equal(packedBatches(examples, 8, 4, 0).reduce((n, b) => n + countTargets(shiftTargets(b)), 0), alone);
  // Collated to T = 8 (left padding), the pad before examples 1 and 3 is trained to predict their unmasked first label.
  assert.equal(countTargets(shiftTargets(collate(examples, { padId: 0 }))), alone + 2);
});
