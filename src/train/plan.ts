// Which examples each optimizer step trains on: the epoch's order (file order, a seeded shuffle, or
// transformers' length grouping), cut into micro-batches, grouped by gradient accumulation. Indices only.

import { hash32 } from '../engine/random.ts';
import { lengthGroupedOrder, shuffledOrder, toBatches } from '../data/batches.ts';

export type DataOrder = 'file' | 'shuffle' | 'length';

export interface PlanSettings {
  microBatchSize: number;
  gradAccumSteps: number;
  order: DataOrder;
  seed: number;
}

/** Micro-batches per epoch (the last may be short, as the DataLoader leaves it). */
export function microBatchesPerEpoch(examples: number, microBatchSize: number): number {
  return Math.ceil(examples / microBatchSize);
}

/** Optimizer steps an epoch runs: the last one takes the leftover micro-batches, as the Trainer does. */
export function stepsPerEpoch(examples: number, s: Pick<PlanSettings, 'microBatchSize' | 'gradAccumSteps'>): number {
  return Math.max(1, Math.ceil(microBatchesPerEpoch(examples, s.microBatchSize) / s.gradAccumSteps));
}

/**
 * The run's length, as the Trainer counts it: epochs × whole accumulation groups per epoch (leftover
 * micro-batches do not count), so with a remainder the last epoch ends a few steps early.
 */
export function scheduledSteps(examples: number, s: Pick<PlanSettings, 'microBatchSize' | 'gradAccumSteps'>, numEpochs: number): number {
  return numEpochs * Math.max(1, Math.floor(microBatchesPerEpoch(examples, s.microBatchSize) / s.gradAccumSteps));
}

/** steps[i] = the micro-batches (each a list of example indices) of the epoch's i-th optimizer step. */
export function epochPlan(lengths: readonly number[], s: PlanSettings, epoch: number): number[][][] {
  const n = lengths.length;
  const seed = hash32(s.seed, epoch);
  const order = s.order === 'file'
    ? Array.from({ length: n }, (_, i) => i)
    : s.order === 'shuffle'
      ? shuffledOrder(n, seed)
      : lengthGroupedOrder(lengths, s.microBatchSize * s.gradAccumSteps, seed);
  const micro = toBatches(order, s.microBatchSize);
  const steps: number[][][] = [];
  for (let i = 0; i < micro.length; i += s.gradAccumSteps) steps.push(micro.slice(i, i + s.gradAccumSteps));
  return steps;
}
