// The one collective a data-parallel optimizer step needs: every rank's gradients (and its share of the
// step's loss sum) replaced by their sum over ranks. Gradients travel as one packed float32 buffer.

import type { Backend } from '../engine/backend.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { World } from './world.ts';

/** Sums `grads` and `lossSum` over the world in place; returns the summed loss. A world of one returns at once. */
export async function allReduceGradients(be: Backend, grads: readonly Tensor[], lossSum: number, world: World): Promise<number> {
  if (world.size === 1) return lossSum;
  const parts = await Promise.all(grads.map((g) => be.download(g) as Promise<Float32Array>));
  const packed = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    packed.set(p, at);
    at += p.length;
  }
  world.allReduceSum(packed);
  at = 0;
  for (let i = 0; i < grads.length; i++) {
    be.upload(grads[i]!, packed.subarray(at, at + parts[i]!.length));
    at += parts[i]!.length;
  }
  const loss = new Float64Array([lossSum]);
  world.allReduceSum(loss);
  return loss[0]!;
}
