// A tensor as TypeScript sees it: shape, dtype, the arena it lives in, and an opaque handle that only
// its backend understands. It holds no data and does no math.

import type { TensorDType } from './dtype.ts';

/** Lifetimes: memory is allocated per arena and freed arena by arena. */
export type Arena = 'weights' | 'adapters' | 'grads' | 'optim' | 'activations' | 'scratch';

export interface Tensor {
  readonly shape: readonly number[];
  readonly dtype: TensorDType; // a QuantDType only for weights made by Backend.uploadQuantized
  readonly arena: Arena;
  readonly size: number; // number of elements
  readonly handle: unknown; // backend-owned
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
