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
  const kth = Float32Array.from(scores).sort()[scores.length - k]!;
  for (let i = 0; i < scores.length; i++) if (scores[i]! < kth) scores[i] = -Infinity;
}

/**
 * Nucleus filtering as HF's TopPLogitsWarper: in ascending order, the tokens whose cumulative probability
 * stays <= 1 - p are removed; the most likely token always stays. (Ties at the cut are all kept.)
 */
export function topP(scores: Float32Array, p: number): void {
  if (p >= 1) return;
  const sorted = Float32Array.from(scores).sort();
  const max = sorted[sorted.length - 1]!;
  let sum = 0;
  for (const s of sorted) sum += Math.exp(s - max);
  let cut = max;
  let cumulative = 0;
  for (let j = 0; j < sorted.length - 1; j++) {
    cumulative += Math.exp(sorted[j]! - max) / sum;
    if (cumulative > 1 - p) {
      cut = sorted[j]!;
      break;
    }
  }
  for (let i = 0; i < scores.length; i++) if (scores[i]! < cut) scores[i] = -Infinity;
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
