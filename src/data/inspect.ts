// What `inspect-data` reports about tokenized examples: length percentiles, truncation at cutoff_len,
// trained tokens, and one example rendered with its masked tokens marked. Computation only; the CLI prints.

import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { IGNORE_INDEX, trainedTokenCount, type TokenizedExample } from './tokenize.ts';

export interface LengthStats {
  min: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export interface DataSummary {
  examples: number;
  lengths: LengthStats; // tokens per example
  atCutoff: number; // examples cut at cutoff_len (so they carry no EOS)
  tokens: number;
  trainedTokens: number;
  untrainedExamples: number; // examples with no trained token at all
}

export function summarizeExamples(examples: readonly TokenizedExample[], cutoffLen: number): DataSummary {
  const lengths = examples.map((e) => e.input_ids.length).sort((a, b) => a - b);
  const tokens = lengths.reduce((sum, n) => sum + n, 0);
  const trained = examples.map(trainedTokenCount);
  return {
    examples: examples.length,
    lengths: {
      min: lengths[0] ?? 0,
      p50: percentile(lengths, 50),
      p90: percentile(lengths, 90),
      p95: percentile(lengths, 95),
      p99: percentile(lengths, 99),
      max: lengths.at(-1) ?? 0,
      mean: examples.length ? tokens / examples.length : 0,
    },
    atCutoff: lengths.filter((n) => n >= cutoffLen).length,
    tokens,
    trainedTokens: trained.reduce((sum, n) => sum + n, 0),
    untrainedExamples: trained.filter((n) => n === 0).length,
  };
}

/** Nearest-rank percentile of ascending values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export interface Markers {
  open: string;
  close: string;
}

/** The example's text with masked (not trained) spans wrapped in markers; special tokens shown. */
export function renderExample(tokenizer: Tokenizer, example: TokenizedExample, markers: Markers = { open: '[[', close: ']]' }): string {
  const ids = example.input_ids;
  let out = '';
  let decoded = '';
  for (let start = 0; start < ids.length; ) {
    const masked = example.labels[start] === IGNORE_INDEX;
    let end = start + 1;
    while (end < ids.length && (example.labels[end] === IGNORE_INDEX) === masked) end++;
    // Decode whole prefixes so a span keeps the space its first token carries.
    const upTo = tokenizer.decode(ids.slice(0, end));
    const span = upTo.slice(decoded.length);
    out += masked ? markers.open + span + markers.close : span;
    decoded = upTo;
    start = end;
  }
  return out;
}
