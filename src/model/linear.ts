// A frozen (or trainable) linear layer with an optional LoRA branch, forward and backward.
// y = x W^T + b + scaling * (dropout(x) A^T) B^T. The LoRA intermediate t = scaling * dropout(x) A^T (N, r)
// is kept for the backward; the dropped-out input is recomputed from its seed rather than stored.
// DoRA (PEFT's formulation, xd = dropout(x), g = m / ||W + s B A|| per output feature, the norm a constant):
// y = x W^T + b + (g - 1) * (xd W^T) + g * (t B^T); z = xd W^T + t B^T (N, OC) is kept for m's gradient.

import type { Backend } from '../engine/backend.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { LoraPair } from './lora.ts';

export interface LinearParams {
  weight: Tensor; // (OC, C)
  bias: Tensor | null; // (OC)
  dWeight: Tensor | null; // set when the base weight is trained (full fine-tuning)
  dBias: Tensor | null;
}

export interface LoraRuntime {
  pair: LoraPair;
  scaling: number;
  dropout: number; // 0 at evaluation
  seed: number; // dropout mask seed for this call
}

/**
 * Buffers a LoRA branch needs per call: t (N, r) saved, xd (N, C), y (N, OC) and dt (N, r; backward only)
 * scratch; with DoRA in training, z (N, OC) f32 saved (null in a forward-only pass, whose dropout is 0).
 */
export interface LoraScratch {
  t: Tensor;
  xd: Tensor;
  y: Tensor;
  dt: Tensor | null;
  z: Tensor | null;
}

export function linearForward(
  be: Backend, out: Tensor, x: Tensor, p: LinearParams, N: number, C: number, OC: number,
  lora: LoraRuntime | null, s: LoraScratch | null,
): void {
  if (lora?.pair.dora && s) return doraForward(be, out, x, p, N, C, OC, lora, s);
  be.matmulForward(out, x, p.weight, p.bias, N, C, OC);
  if (lora && s) addLoraBranch(be, out, x, N, C, OC, lora, s);
}

/** out (N, OC) += the LoRA branch of x (N, C); decoding calls it once per adapter on that adapter's rows. */
export function addLoraBranch(be: Backend, out: Tensor, x: Tensor, N: number, C: number, OC: number, lora: LoraRuntime, s: LoraScratch): void {
  loraIntermediate(be, x, N, C, lora, s);
  be.matmulForward(s.y, s.t, lora.pair.B, null, N, lora.pair.A.shape[0]!, OC);
  be.axpy(out, s.y, 1);
}

function doraForward(
  be: Backend, out: Tensor, x: Tensor, p: LinearParams, N: number, C: number, OC: number, lora: LoraRuntime, s: LoraScratch,
): void {
  const g = lora.pair.dora!.scale;
  loraIntermediate(be, x, N, C, lora, s);
  be.matmulForward(s.y, s.t, lora.pair.B, null, N, lora.pair.A.shape[0]!, OC); // t B^T
  if (lora.dropout === 0) {
    const z = s.z ?? out; // y = g * (x W^T + t B^T) + b
    be.matmulForward(z, x, p.weight, null, N, C, OC);
    be.axpy(z, s.y, 1);
    be.scaleColumns(out, z, g, p.bias, N, OC);
    return;
  }
  if (!s.z) throw new Error('DoRA with dropout runs only in training, which keeps z');
  be.matmulForward(s.z, s.xd, p.weight, null, N, C, OC); // xd W^T
  be.matmulForward(out, x, p.weight, p.bias, N, C, OC);
  be.axpy(out, s.z, -1);
  be.axpy(s.z, s.y, 1); // z = xd W^T + t B^T
  be.scaleColumns(s.y, s.z, g, null, N, OC);
  be.axpy(out, s.y, 1); // y = x W^T + b - xd W^T + g * z
}

/** s.t (N, r) = scaling * dropout(x) A^T: what the forward keeps of the LoRA branch (also the recompute). */
export function loraIntermediate(be: Backend, x: Tensor, N: number, C: number, lora: LoraRuntime, s: LoraScratch): void {
  const A = lora.pair.A;
  const xd = lora.dropout > 0 ? s.xd : x;
  if (lora.dropout > 0) be.dropout(xd, x, lora.dropout, lora.seed);
  be.matmulForward(s.t, xd, A, null, N, C, A.shape[0]!);
  be.scale(s.t, lora.scaling);
}

/**
 * dx (N, C) = dy W + LoRA's contribution (overwrite); accumulates dA, dB (and dW, db when trained).
 * `dxScratch` (N, C) receives the LoRA branch's input gradient before it is added to dx.
 */
export function linearBackward(
  be: Backend, dx: Tensor | null, dy: Tensor, x: Tensor, p: LinearParams, N: number, C: number, OC: number,
  lora: LoraRuntime | null, s: LoraScratch | null,
): void {
  if (lora?.pair.dora && s) return doraBackward(be, dx, dy, x, p, N, C, OC, lora, s);
  be.matmulBackward(dx, p.dWeight, p.dBias, dy, x, p.weight, N, C, OC);
  if (!lora || !s) return;
  const { A, B, dA, dB } = lora.pair;
  const r = A.shape[0]!;
  const dt = s.dt!;
  be.matmulBackward(dt, dB, null, dy, s.t, B, N, r, OC);
  be.scale(dt, lora.scaling);
  const xd = lora.dropout > 0 ? s.xd : x;
  if (lora.dropout > 0) be.dropout(xd, x, lora.dropout, lora.seed);
  const dxd = s.xd; // reuse: xd is no longer needed once dA is accumulated below
  be.matmulBackward(null, dA, null, dt, xd, A, N, C, r);
  if (!dx) return;
  be.matmulBackward(dxd, null, null, dt, xd, A, N, C, r);
  if (lora.dropout > 0) be.dropout(dxd, dxd, lora.dropout, lora.seed);
  be.axpy(dx, dxd, 1);
}

/**
 * DoRA's backward (the base weight frozen): dm += sum(dy * z) / n; the LoRA branch sees dz = g * dy;
 * dx = dz W + dz's LoRA input gradient (dropout 0), else dy W + dropout'((dz - dy) W + LoRA's).
 */
function doraBackward(
  be: Backend, dx: Tensor | null, dy: Tensor, x: Tensor, p: LinearParams, N: number, C: number, OC: number, lora: LoraRuntime, s: LoraScratch,
): void {
  if (p.dWeight || p.dBias) throw new Error('DoRA trains with its base weight frozen');
  const { A, B, dA, dB } = lora.pair;
  const dora = lora.pair.dora!;
  const r = A.shape[0]!;
  const dt = s.dt!, dz = s.y;
  be.columnDot(dora.dMagnitude, dy, s.z!, dora.invNorm, N, OC);
  be.scaleColumns(dz, dy, dora.scale, null, N, OC);
  be.matmulBackward(dt, dB, null, dz, s.t, B, N, r, OC);
  be.scale(dt, lora.scaling);
  const xd = lora.dropout > 0 ? s.xd : x;
  if (lora.dropout > 0) be.dropout(xd, x, lora.dropout, lora.seed);
  be.matmulBackward(null, dA, null, dt, xd, A, N, C, r);
  if (!dx) return;
  const dxd = s.xd; // reuse: xd is no longer needed once dA is accumulated
  if (lora.dropout === 0) {
    be.matmulBackward(dx, null, null, dz, x, p.weight, N, C, OC);
    be.matmulBackward(dxd, null, null, dt, x, A, N, C, r);
    be.axpy(dx, dxd, 1);
    return;
  }
  be.matmulBackward(dx, null, null, dy, x, p.weight, N, C, OC);
  be.matmulBackward(dxd, null, null, dt, x, A, N, C, r);
  be.dropout(dxd, dxd, lora.dropout, lora.seed);
  be.axpy(dx, dxd, 1);
  be.axpy(dz, dy, -1); // the gradient of xd W^T: (g - 1) * dy
  be.matmulBackward(dxd, null, null, dz, x, p.weight, N, C, OC);
  be.dropout(dxd, dxd, lora.dropout, lora.seed);
  be.axpy(dx, dxd, 1);
}
