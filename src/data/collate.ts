// Pads a list of tokenized examples into one batch, as DataCollatorForSeq2Seq does for alpaca-lora:
// left padding, pad id 0 unless the tokenizer has one, length rounded up to a multiple of 8, labels
// padded with -100. Flat row-major (B, T) Int32Arrays; not batching order (see batches.ts).

import { IGNORE_INDEX, type TokenizedExample } from './tokenize.ts';

export interface Batch {
  B: number;
  T: number;
  inputIds: Int32Array; // (B, T)
  attentionMask: Int32Array; // (B, T), 0 on padding
  labels: Int32Array; // (B, T), IGNORE_INDEX on padding and masked positions
}

export interface CollateOptions {
  padId: number;
  padToMultipleOf?: number; // default 8
  padSide?: 'left' | 'right'; // default 'left'
}

type CollatableExample = Pick<TokenizedExample, 'input_ids' | 'labels'>;

export function collate(examples: readonly CollatableExample[], options: CollateOptions): Batch {
  const multiple = options.padToMultipleOf ?? 8;
  const left = (options.padSide ?? 'left') === 'left';
  const B = examples.length;
  const longest = Math.max(0, ...examples.map((e) => e.input_ids.length));
  const T = Math.ceil(longest / multiple) * multiple;
  const inputIds = new Int32Array(B * T).fill(options.padId);
  const attentionMask = new Int32Array(B * T);
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  examples.forEach((e, b) => {
    const L = e.input_ids.length;
    if (e.labels.length !== L) throw new Error(`example ${b}: ${L} input_ids but ${e.labels.length} labels`);
    const start = b * T + (left ? T - L : 0);
    inputIds.set(e.input_ids, start);
    attentionMask.fill(1, start, start + L);
    labels.set(e.labels, start);
  });
  return { B, T, inputIds, attentionMask, labels };
}
