// Sequence packing (--packing): the examples of one optimizer step laid end to end in rows of rowLen tokens,
// first fit by decreasing length, rowsPerBatch rows per micro-batch. Each example is a segment of its own
// (segment ids; the attention op keeps segments apart and positions restart at each), padding is one more
// segment at the row's end. Each example's first label is masked, so no example is trained to predict the start
// of the next one: the counted targets are exactly those of each example alone in a row (left padding would add
// one: the pad before an example trained to predict its first token when that label is not masked).
// Not which examples form a step (train/plan.ts).

import type { Batch } from './collate.ts';
import { IGNORE_INDEX } from './tokenize.ts';

export interface PackableExample {
  input_ids: readonly number[];
  labels: readonly number[];
}

/** A packed micro-batch: collate's rows plus the segment ids the model needs to keep examples apart. */
export interface PackedBatch extends Batch {
  /** (B, T) runs of equal ids, one per example in row order, then padding's own run; ids count from 1 per row. */
  segmentIds: Int32Array;
}

/** The row length of a packed run: cutoff_len (no example is cut further), rounded up to a multiple of 8 as collate pads. */
export function packedRowLength(cutoffLen: number, lengths: readonly number[]): number {
  return Math.ceil(lengths.reduce((a, n) => Math.max(a, n), cutoffLen) / 8) * 8;
}

/** Example indices per row: first fit, longest first (ties in input order); throws on an example longer than rowLen. */
export function packRows(lengths: readonly number[], rowLen: number): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const rows: number[][] = [], free: number[] = [];
  for (const i of order) {
    const n = lengths[i]!;
    if (n > rowLen) throw new Error(`example ${i} has ${n} tokens, more than the packed row length ${rowLen}`);
    const r = free.findIndex((f) => f >= n);
    if (r >= 0) {
      rows[r]!.push(i);
      free[r]! -= n;
    } else {
      rows.push([i]);
      free.push(rowLen - n);
    }
  }
  return rows;
}

/** The step's examples packed into micro-batches of up to rowsPerBatch rows of rowLen tokens (pad: padId, label -100). */
export function packedBatches(examples: readonly PackableExample[], rowLen: number, rowsPerBatch: number, padId: number): PackedBatch[] {
  const rows = packRows(examples.map((e) => e.input_ids.length), rowLen);
  const batches: PackedBatch[] = [];
  for (let r0 = 0; r0 < rows.length; r0 += rowsPerBatch) batches.push(packedBatch(rows.slice(r0, r0 + rowsPerBatch), examples, rowLen, padId));
  return batches;
}

function packedBatch(rows: readonly number[][], examples: readonly PackableExample[], T: number, padId: number): PackedBatch {
  const B = rows.length;
  const inputIds = new Int32Array(B * T).fill(padId);
  const attentionMask = new Int32Array(B * T);
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  const segmentIds = new Int32Array(B * T);
  rows.forEach((row, b) => {
    let t = b * T;
    row.forEach((i, s) => {
      const e = examples[i]!;
      const n = e.input_ids.length;
      if (e.labels.length !== n) throw new Error(`example ${i}: ${n} input_ids but ${e.labels.length} labels`);
      inputIds.set(e.input_ids, t);
      labels.set(e.labels, t);
      labels[t] = IGNORE_INDEX;
      attentionMask.fill(1, t, t + n);
      segmentIds.fill(s + 1, t, (t += n));
    });
    segmentIds.fill(row.length + 1, t, (b + 1) * T);
  });
  return { B, T, inputIds, attentionMask, labels, segmentIds };
}
