// Logits processors as transformers applies them, in place on one row of V scores, in its order:
// repetition penalty, then (sampling only) temperature, top-k, top-p. Removed tokens become -Infinity.
// Not the choice of a token (see sampling.ts) and not beam bookkeeping (see beam.ts).

import type { GenerationOptions } from './options.ts';

/** Each token seen in `history`: a positive score is divided by the penalty, a negative one multiplied. */
export function repetitionPenalty(scores: Float32Array, history: readonly number[], penalty: number): void {
  if (penalty === 1) return;
  const seen = new Set(history);
  for (const id of seen) {
    const s = scores[id]!;
    scores[id] = s < 0 ? s * penalty : s / penalty;
  }
}

export function temperature(scores: Float32Array, t: number): void {
  if (t === 1) return;
  for (let i = 0; i < scores.length; i++) scores[i]! /= t;
}

/** Keeps the k highest scores and every score tied with the k-th. */
export function topK(scores: Float32Array, k: number): void {
  if (k <= 0 || k >= scores.length) return;
  const kth = highest(scores, k)[k - 1]!;
  for (let i = 0; i < scores.length; i++) if (scores[i]! < kth) scores[i] = -Infinity;
}

/**
 * Nucleus filtering as HF's TopPLogitsWarper: in ascending order, the tokens whose cumulative probability
 * stays <= 1 - p are removed, i.e. a token stays while the tokens above it hold less than p; the most
 * likely token always stays. (Ties at the cut all stay.) Looks at the top few first, widening as needed.
 */
export function topP(scores: Float32Array, p: number): void {
  if (p >= 1) return;
  let max = -Infinity, finite = 0;
  for (const s of scores) {
    if (s > max) max = s;
    if (s !== -Infinity) finite++;
  }
  let sum = 0;
  for (const s of scores) sum += Math.exp(s - max);
  for (let m = Math.min(64, finite); ; m = Math.min(m * 4, finite)) {
    const top = highest(scores, m);
    let above = 0;
    for (let i = 0; i < m; i++) {
      if (above >= p) {
        for (let j = 0; j < scores.length; j++) if (scores[j]! < top[i - 1]!) scores[j] = -Infinity;
        return;
      }
      above += Math.exp(top[i]! - max) / sum;
    }
    if (m === finite) return;
  }
}

/** The m highest values, highest first (a size-m min-heap over one pass). */
function highest(scores: Float32Array, m: number): Float32Array {
  const heap = new Float32Array(m).fill(-Infinity);
  for (const s of scores) {
    if (s <= heap[0]!) continue;
    heap[0] = s;
    for (let i = 0; ;) {
      const l = 2 * i + 1, r = l + 1;
      let least = i;
      if (l < m && heap[l]! < heap[least]!) least = l;
      if (r < m && heap[r]! < heap[least]!) least = r;
      if (least === i) break;
      [heap[i], heap[least]] = [heap[least]!, heap[i]!];
      i = least;
    }
  }
  return heap.sort().reverse();
}

/** Whether processScores can change these options' scores (if not, greedy search needs only their argmax). */
export function processesScores(o: GenerationOptions): boolean {
  return o.repetitionPenalty !== 1;
}

/** What greedy search and beam search apply (no warpers). */
export function processScores(scores: Float32Array, history: readonly number[], o: GenerationOptions): void {
  repetitionPenalty(scores, history, o.repetitionPenalty);
}

/** What sampling applies: the processors, then the warpers. */
export function warpScores(scores: Float32Array, history: readonly number[], o: GenerationOptions): void {
  processScores(scores, history, o);
  temperature(scores, o.temperature);
  topK(scores, o.topK);
  topP(scores, o.topP);
}
