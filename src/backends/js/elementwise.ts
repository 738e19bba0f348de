// Elementwise ops of the js backend: plain loops over flat arrays.

import { f32ToBf16, f32ToF16 } from '../../engine/dtype.ts';
import { dropoutKeep } from '../../engine/random.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { data, f32 } from './memory.ts';

export function fill(t: Tensor, value: number): void {
  const stored = t.dtype === 'bf16' ? f32ToBf16(value) : t.dtype === 'f16' ? f32ToF16(value) : value;
  data(t).fill(stored);
}

export function add(out: Tensor, a: Tensor, b: Tensor): void {
  const o = f32(out), x = f32(a), y = f32(b);
  for (let i = 0; i < o.length; i++) o[i] = x[i]! + y[i]!;
}

export function axpy(dst: Tensor, src: Tensor, s: number): void {
  const d = f32(dst), x = f32(src);
  for (let i = 0; i < d.length; i++) d[i]! += s * x[i]!;
}

export function scale(t: Tensor, s: number): void {
  const d = f32(t);
  for (let i = 0; i < d.length; i++) d[i]! *= s;
}

export function copyTime(
  dst: Tensor, src: Tensor, B: number, W: number, Tdst: number, dstT0: number, Tsrc: number, srcT0: number, count: number,
): void {
  const d = data(dst), s = data(src);
  if (d.constructor !== s.constructor) throw new Error('js backend: copyTime needs matching dtypes');
  for (let b = 0; b < B; b++) {
    const from = (b * Tsrc + srcT0) * W;
    (d as Float32Array).set((s as Float32Array).subarray(from, from + count * W), (b * Tdst + dstT0) * W);
  }
}

export function dropout(out: Tensor, inp: Tensor, p: number, seed: number): void {
  const o = f32(out), x = f32(inp);
  const keepScale = 1 / (1 - p);
  for (let i = 0; i < o.length; i++) o[i] = dropoutKeep(seed, i, p) ? x[i]! * keepScale : 0;
}
