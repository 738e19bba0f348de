// Choosing a token from processed scores: argmax (greedy), or a draw from softmax(scores) with a seeded Rng.
// Also log-softmax in float32, as beam search scores tokens. Not the processors (see processors.ts).

import type { Rng } from '../engine/random.ts';

export { argmax } from '../engine/argmax.ts';

const f = Math.fround;

/** Draws an index with probability softmax(scores); -Infinity scores are never drawn. */
export function sample(scores: Float32Array, rng: Rng): number {
  let max = -Infinity;
  for (const s of scores) if (s > max) max = s;
  let sum = 0;
  for (const s of scores) sum += Math.exp(s - max);
  let u = rng.next() * sum;
  let last = 0;
  for (let i = 0; i < scores.length; i++) {
    if (scores[i] === -Infinity) continue;
    last = i;
    u -= Math.exp(scores[i]! - max);
    if (u < 0) return i;
  }
  return last; // rounding left a sliver of u
}

/** log_softmax in place, each step rounded to float32 as torch computes it. */
export function logSoftmax(scores: Float32Array): void {
  let max = -Infinity;
  for (const s of scores) if (s > max) max = s;
  let sum = 0;
  for (const s of scores) sum += Math.exp(f(s - max));
  const logSum = f(Math.log(f(sum)));
  for (let i = 0; i < scores.length; i++) scores[i] = f(f(scores[i]! - max) - logSum);
}
