// Memory for the js backend: a tensor's handle is a typed array (f32 -> Float32Array, bf16/f16 -> Uint16Array
// bits, i32 -> Int32Array; a quantized weight's is its parts, see quant.ts). Views are subarrays. Not an
// allocator: arenas are just lists to drop.

import { BYTES_PER_ELEMENT, type DType, f32ToHalf, halfToF32, isFrozenDType } from '../../engine/dtype.ts';
import { numel, shapeString, type Arena, type Tensor } from '../../engine/tensor.ts';

export type JsData = Float32Array | Uint16Array | Int32Array;

interface JsTensor extends Tensor {
  readonly handle: JsData;
}

export function makeTensor(shape: readonly number[], dtype: DType, arena: Arena, data?: JsData): Tensor {
  const size = numel(shape);
  const handle = data ?? newArray(dtype, size);
  const t: JsTensor = { shape: [...shape], dtype, arena, size, handle };
  return t;
}

function newArray(dtype: DType, n: number): JsData {
  switch (dtype) {
    case 'f32':
      return new Float32Array(n);
    case 'bf16':
    case 'f16':
      return new Uint16Array(n);
    case 'i32':
      return new Int32Array(n);
  }
}

/** Bits a freed tensor is overwritten with: NaN for floats (f32, bf16, f16), -2^31 for i32. */
const POISON: Readonly<Record<DType, number>> = { f32: NaN, bf16: 0x7fc0, f16: 0x7e00, i32: -0x80000000 };

/** Overwrites a freed dense tensor's memory so that a stale use computes garbage loudly rather than quietly. */
export function poison(t: Tensor): void {
  data(t).fill(POISON[denseDType(t)]);
}

export function data(t: Tensor): JsData {
  if (isFrozenDType(t.dtype)) throw new Error(quantOnlyInMatmul(t));
  return t.handle as JsData;
}

/** The f32 storage of a tensor the op writes to (must be f32). */
export function f32(t: Tensor): Float32Array {
  if (t.dtype !== 'f32') throw new Error(`js backend: expected an f32 tensor, got ${t.dtype} ${shapeString(t.shape)}`);
  return t.handle as Float32Array;
}

export function i32(t: Tensor): Int32Array {
  if (t.dtype !== 'i32') throw new Error(`js backend: expected an i32 tensor, got ${t.dtype} ${shapeString(t.shape)}`);
  return t.handle as Int32Array;
}

/**
 * Float32 contents of a tensor to read from: f32 storage directly, half storage widened into `scratch`
 * (which grows as needed; the returned array is valid until the next call with the same scratch).
 */
export function readF32(t: Tensor, scratch: { buf: Float32Array }): Float32Array {
  if (t.dtype === 'f32') return t.handle as Float32Array;
  if (t.dtype === 'i32') throw new Error('js backend: expected a float tensor, got i32');
  if (isFrozenDType(t.dtype)) throw new Error(quantOnlyInMatmul(t));
  if (scratch.buf.length < t.size) scratch.buf = new Float32Array(t.size);
  return halfToF32(t.handle as Uint16Array, t.dtype, scratch.buf.subarray(0, t.size));
}

/** Float32 values of a float tensor to read: its storage when f32, else a fresh widened copy. */
export function values(t: Tensor): Float32Array {
  return readF32(t, { buf: new Float32Array(t.size) });
}

/**
 * Float32 storage for an op to write t through: t's own when f32, else a widened copy that `store` rounds
 * back to t's dtype (round to nearest even) once the op is done.
 */
export function target(t: Tensor): Float32Array {
  return t.dtype === 'f32' ? (t.handle as Float32Array) : values(t);
}

/** Ends a write begun with `target`. */
export function store(t: Tensor, v: Float32Array): void {
  if (t.dtype !== 'f32') writeF32(t, v);
}

/** Store float32 values into a tensor of any float dtype. */
export function writeF32(t: Tensor, values: Float32Array): void {
  if (t.dtype === 'f32') (t.handle as Float32Array).set(values);
  else if (t.dtype === 'bf16' || t.dtype === 'f16') f32ToHalf(values, t.dtype, t.handle as Uint16Array);
  else if (isFrozenDType(t.dtype)) throw new Error(quantOnlyInMatmul(t));
  else throw new Error('js backend: cannot write floats to an i32 tensor');
}

/** Why an op other than matmul refuses a quantized weight. */
export function quantOnlyInMatmul(t: Tensor): string {
  return `js backend: the ${t.dtype} tensor ${shapeString(t.shape)} is a quantized weight; only matmulForward and matmulBackward's dinp read one`;
}

/** The dense dtype of a tensor, or an error for a quantized weight. */
export function denseDType(t: Tensor): DType {
  if (isFrozenDType(t.dtype)) throw new Error(quantOnlyInMatmul(t));
  return t.dtype;
}

export function byteSize(t: Tensor): number {
  return t.size * BYTES_PER_ELEMENT[denseDType(t)];
}
