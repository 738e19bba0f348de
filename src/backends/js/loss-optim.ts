// Fused softmax cross-entropy, argmax per row, sum of squares and AdamW for the js backend.

import type { Tensor } from '../../engine/tensor.ts';
import { argmax } from '../../engine/argmax.ts';
import { f32, i32 } from './memory.ts';

import { IGNORE_INDEX } from '../../engine/backend.ts';

export function argmaxRows(out: Tensor, x: Tensor, R: number, V: number): void {
  const o = i32(out), xs = f32(x);
  for (let r = 0; r < R; r++) o[r] = argmax(xs, r * V, V);
}

export function crossEntropy(losses: Tensor, dlogits: Tensor | null, logits: Tensor, targets: Tensor, N: number, V: number, gradScale: number): void {
  const l = f32(losses), x = f32(logits), t = i32(targets);
  const g = dlogits ? f32(dlogits) : null;
  for (let n = 0; n < N; n++) {
    const row = n * V;
    const target = t[n]!;
    if (target === IGNORE_INDEX) {
      l[n] = 0;
      if (g) g.fill(0, row, row + V);
      continue;
    }
    if (target < 0 || target >= V) throw new Error(`label ${target} at row ${n} is outside the vocabulary (size ${V})`);
    let max = -Infinity;
    for (let v = 0; v < V; v++) if (x[row + v]! > max) max = x[row + v]!;
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(x[row + v]! - max);
    const logZ = max + Math.log(sum);
    l[n] = logZ - x[row + target]!;
    if (g) {
      for (let v = 0; v < V; v++) g[row + v] = Math.exp(x[row + v]! - logZ) * gradScale;
      g[row + target]! -= gradScale;
    }
  }
}

export function sumSquares(out: Tensor, t: Tensor): void {
  const x = f32(t);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  f32(out)[0]! += s;
}

// torch.optim.AdamW: decoupled decay, then Adam with bias correction (eps added after the sqrt correction).
export function adamw(
  param: Tensor, grad: Tensor, m: Tensor, v: Tensor,
  lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number,
): void {
  const p = f32(param), g = f32(grad), M = f32(m), Vv = f32(v);
  const bc1 = 1 - beta1 ** step;
  const bc2Sqrt = Math.sqrt(1 - beta2 ** step);
  const stepSize = lr / bc1;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]!;
    p[i]! *= 1 - lr * weightDecay;
    M[i] = beta1 * M[i]! + (1 - beta1) * gi;
    Vv[i] = beta2 * Vv[i]! + (1 - beta2) * gi * gi;
    p[i]! -= (stepSize * M[i]!) / (Math.sqrt(Vv[i]!) / bc2Sqrt + eps);
  }
}
