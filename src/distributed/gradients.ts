// The one collective a data-parallel optimizer step needs: every rank's gradients (and its share of the
// step's loss sum) replaced by their sum over ranks. Gradients are summed in place on the device where the
// backend can (cuda with NCCL), else they travel as one packed float32 buffer over MPI; the loss always
// goes over MPI. Which path is device-reduce.ts's choice.

import type { Backend } from '../engine/backend.ts';
import type { Tensor } from '../engine/tensor.ts';
import { gradientPath } from './device-reduce.ts';
import type { World } from './world.ts';

/** Sums `grads` and `lossSum` over the world in place; returns the summed loss. A world of one returns at once. */
export async function allReduceGradients(be: Backend, grads: readonly Tensor[], lossSum: number, world: World): Promise<number> {
  const path = gradientPath(be, world);
  if (path.kind === 'single') return lossSum;
  if (path.kind === 'device') {
    for (const g of grads) path.collectives.allReduceSum(g);
  } else {
    await allReduceOnHost(be, grads, world);
  }
  const loss = new Float64Array([lossSum]);
  world.allReduceSum(loss);
  return loss[0]!;
}

/** Downloads every gradient, sums one packed float32 buffer over MPI, uploads the sums back. */
async function allReduceOnHost(be: Backend, grads: readonly Tensor[], world: World): Promise<void> {
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
}
