// The train/validation split: seeded and deterministic, shaped like datasets' train_test_split with
// shuffle=True (a permutation; the first val_set_size items validate). Not per-epoch shuffling.

import { Rng } from '../engine/random.ts';
import { UserError } from '../errors.ts';

/** `valSetSize` is a count (an integer ≥ 1) or a fraction of the data (0 < x < 1); 0 means no validation set. */
export function splitTrainVal<T>(items: readonly T[], valSetSize: number, seed = 42): { train: T[]; val: T[] } {
  if (valSetSize === 0) return { train: [...items], val: [] };
  const n = items.length;
  const valCount = valSetSize < 1 ? Math.ceil(valSetSize * n) : valSetSize;
  if (!(valSetSize > 0) || !Number.isInteger(valCount) || valCount >= n) {
    throw new UserError(
      `--val_set_size ${valSetSize} does not fit a data set of ${n} examples: ` +
        `give a count below ${n}, a fraction between 0 and 1, or 0 for no validation set`,
    );
  }
  const order = new Rng(seed).shuffle(Array.from({ length: n }, (_, i) => i));
  return {
    val: order.slice(0, valCount).map((i) => items[i]!),
    train: order.slice(valCount).map((i) => items[i]!),
  };
}
