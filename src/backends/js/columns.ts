// Per-output-feature ops of the js backend (DoRA's magnitude scaling and its gradient): a vector of OC
// factors applied to, or reduced over, the columns of an (N, OC) activation. Not general broadcasting.

import type { Tensor } from '../../engine/tensor.ts';
import { f32, store, target, values } from './memory.ts';

export function scaleColumns(out: Tensor, inp: Tensor, scale: Tensor, bias: Tensor | null, N: number, OC: number): void {
  const x = values(inp), s = f32(scale), b = bias ? values(bias) : null, o = target(out);
  for (let i = 0; i < N; i++) {
    const row = i * OC;
    for (let c = 0; c < OC; c++) o[row + c] = x[row + c]! * s[c]! + (b ? b[c]! : 0);
  }
  store(out, o);
}

export function columnDot(out: Tensor, a: Tensor, b: Tensor, scale: Tensor, N: number, OC: number): void {
  const o = f32(out), x = f32(a), y = f32(b), s = f32(scale);
  for (let c = 0; c < OC; c++) {
    let sum = 0;
    for (let i = 0; i < N; i++) sum += x[i * OC + c]! * y[i * OC + c]!;
    o[c]! += s[c]! * sum;
  }
}
