// Element types the engine stores, and conversions between float32 and the 16-bit floats.
// Not a tensor library: just the bit-level conversions, written once.
//
// Two kinds of tensor dtype. A DType is dense, one element per slot: what `alloc` makes and what `upload`,
// `download`, `view` and every op address element by element (the tables below are keyed by it). A FrozenDType
// is a frozen linear weight in a format of its own, read only as the weight of matmulForward / matmulBackward's
// dinp and downloaded as its float32 values: a bitsandbytes-quantized one (QuantDType, engine/quantized.ts, made
// by `uploadQuantized`) or a bf16 one packed for a backend's inference products ('bf16-packed', `packWeight`).
// Keeping them apart leaves every DType-keyed table and switch as it was; only the few places that take a
// Tensor's dtype (TensorDType) must say what a frozen weight means there, which the type checker points out.

import type { QuantType } from './quantized.ts';

export type DType = 'f32' | 'bf16' | 'f16' | 'i32';
export type QuantDType = QuantType;
export type FrozenDType = QuantDType | 'bf16-packed';
export type TensorDType = DType | FrozenDType;

/** Whether a tensor dtype is a bitsandbytes-quantized weight format. */
export function isQuantDType(dtype: TensorDType): dtype is QuantDType {
  return dtype === 'nf4' || dtype === 'fp4' || dtype === 'int8';
}

/** Whether a tensor dtype is a frozen weight format (quantized or packed) rather than a dense element type. */
export function isFrozenDType(dtype: TensorDType): dtype is FrozenDType {
  return dtype === 'bf16-packed' || isQuantDType(dtype);
}

export const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = { f32: 4, bf16: 2, f16: 2, i32: 4 };

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** bfloat16 bits -> float32 value. */
export function bf16ToF32(bits: number): number {
  u32Scratch[0] = bits << 16;
  return f32Scratch[0]!;
}

/** float32 value -> bfloat16 bits, round to nearest even (as torch does); NaN stays NaN. */
export function f32ToBf16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float16 bits -> float32 value. */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** float32 value -> float16 bits, round to nearest even; overflow becomes infinity. */
export function f32ToF16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let frac = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (frac ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    frac |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = frac & ((1 << shift) - 1);
    let h = frac >>> shift;
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (frac >>> 13);
  const rest = frac & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/** Widen a bf16 or f16 array to float32. */
export function halfToF32(bits: Uint16Array, dtype: 'bf16' | 'f16', out: Float32Array = new Float32Array(bits.length)): Float32Array {
  if (dtype === 'bf16') {
    const out32 = new Uint32Array(out.buffer, out.byteOffset, out.length);
    for (let i = 0; i < bits.length; i++) out32[i] = bits[i]! << 16;
  } else {
    for (let i = 0; i < bits.length; i++) out[i] = f16ToF32(bits[i]!);
  }
  return out;
}

/** Narrow a float32 array to bf16 or f16 bits. */
export function f32ToHalf(values: Float32Array, dtype: 'bf16' | 'f16', out: Uint16Array = new Uint16Array(values.length)): Uint16Array {
  const convert = dtype === 'bf16' ? f32ToBf16 : f32ToF16;
  for (let i = 0; i < values.length; i++) out[i] = convert(values[i]!);
  return out;
}

/** value's nearest float32, then (bf16/f16) that value's nearest in dtype, round to nearest even as torch's casts. */
export function roundingTo(dtype: 'f32' | 'bf16' | 'f16'): (value: number) => number {
  if (dtype === 'bf16') return (v) => bf16ToF32(f32ToBf16(v));
  return dtype === 'f16' ? (v) => f16ToF32(f32ToF16(v)) : Math.fround;
}
