// Sequence packing (optional): consecutive examples share a row of up to seqLen tokens, so batches
// carry less padding. Examples are never split; positions restart at each example, and its first
// label is masked so no example is trained to predict the start of the next one.

import { IGNORE_INDEX, type TokenizedExample } from './tokenize.ts';

export interface PackedExample extends TokenizedExample {
  position_ids: number[];
}

/** Packs in order; an example longer than seqLen is truncated to it. */
export function packSequences(examples: readonly TokenizedExample[], seqLen: number): PackedExample[] {
  const rows: PackedExample[] = [];
  let row: PackedExample = emptyRow();
  for (const example of examples) {
    const n = Math.min(example.input_ids.length, seqLen);
    if (row.input_ids.length + n > seqLen) {
      rows.push(row);
      row = emptyRow();
    }
    for (let t = 0; t < n; t++) {
      row.input_ids.push(example.input_ids[t]!);
      row.labels.push(t === 0 ? IGNORE_INDEX : example.labels[t]!);
      row.attention_mask.push(1);
      row.position_ids.push(t);
    }
  }
  if (row.input_ids.length > 0) rows.push(row);
  return rows;
}

function emptyRow(): PackedExample {
  return { input_ids: [], labels: [], attention_mask: [], position_ids: [] };
}
