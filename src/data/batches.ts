// The order examples are visited in each epoch, and its cutting into batches: a seeded shuffle, or
// transformers' length-grouped order (--group_by_length). Indices only; not collation.

import { Rng } from '../engine/random.ts';

/** A seeded permutation of 0..n-1 (the RandomSampler's job). */
export function shuffledOrder(n: number, seed: number): number[] {
  return new Rng(seed).shuffle(Array.from({ length: n }, (_, i) => i));
}

/**
 * transformers' get_length_grouped_indices: a random permutation cut into megabatches of
 * min(n / (4·batchSize), 50)·batchSize, each sorted longest first, and the longest example of all moved to
 * the very front (so an out-of-memory shows up on the first step). The Trainer passes
 * batchSize = micro batch × gradient accumulation steps.
 */
export function lengthGroupedOrder(lengths: readonly number[], batchSize: number, seed: number): number[] {
  const n = lengths.length;
  const megabatchSize = Math.max(1, Math.min(Math.floor(n / (batchSize * 4)), 50)) * batchSize;
  const order = shuffledOrder(n, seed);
  const megabatches: number[][] = [];
  for (let i = 0; i < n; i += megabatchSize) {
    megabatches.push(order.slice(i, i + megabatchSize).sort((a, b) => lengths[b]! - lengths[a]!));
  }
  if (megabatches.length === 0) return [];
  let longest = 0;
  megabatches.forEach((m, i) => {
    if (lengths[m[0]!]! > lengths[megabatches[longest]![0]!]!) longest = i;
  });
  const first = megabatches[0]!;
  const top = megabatches[longest]!;
  [first[0], top[0]] = [top[0]!, first[0]!];
  return megabatches.flat();
}

/** Consecutive slices of `order`; the last one may be short unless dropLast. */
export function toBatches(order: readonly number[], batchSize: number, dropLast = false): number[][] {
  const batches: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) {
    const batch = order.slice(i, i + batchSize);
    if (batch.length === batchSize || !dropLast) batches.push(batch);
  }
  return batches;
}
