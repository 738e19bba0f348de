// Elementwise ops of the js backend: plain loops over flat arrays. Float operands of add, axpy, scale and
// dropout may be f32, bf16 or f16: read widened, results rounded once to the destination's dtype.

import { f32ToBf16, f32ToF16 } from '../../engine/dtype.ts';
import { dropoutKeep } from '../../engine/random.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { data, store, target, values } from './memory.ts';

export function fill(t: Tensor, value: number): void {
  const stored = t.dtype === 'bf16' ? f32ToBf16(value) : t.dtype === 'f16' ? f32ToF16(value) : value;
  data(t).fill(stored);
}

export function add(out: Tensor, a: Tensor, b: Tensor): void {
  const x = values(a), y = values(b), o = target(out);
  for (let i = 0; i < o.length; i++) o[i] = x[i]! + y[i]!;
  store(out, o);
}

export function axpy(dst: Tensor, src: Tensor, s: number): void {
  const x = values(src), d = target(dst);
  for (let i = 0; i < d.length; i++) d[i]! += s * x[i]!;
  store(dst, d);
}

export function scale(t: Tensor, s: number): void {
  const d = target(t);
  for (let i = 0; i < d.length; i++) d[i]! *= s;
  store(t, d);
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
  const x = values(inp), o = target(out);
  const keepScale = 1 / (1 - p);
  for (let i = 0; i < o.length; i++) o[i] = dropoutKeep(seed, i, p) ? x[i]! * keepScale : 0;
  store(out, o);
}
