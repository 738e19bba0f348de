// A tensor held in host memory exactly as a file stores it (dtype, shape, little-endian data), and the
// conversions to and from float32. Not an engine tensor: no backend, no math.

import { f32ToHalf, halfToF32 } from '../engine/dtype.ts';
import { numel } from '../engine/tensor.ts';

/** Element types as safetensors names them; F16/BF16 are kept as raw 16-bit patterns. */
export type StorageDType = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I8' | 'U8' | 'BOOL';

export type HostData = Float32Array | Uint16Array | Int32Array | BigInt64Array | Int8Array | Uint8Array;

export interface HostTensor {
  dtype: StorageDType;
  shape: number[];
  data: HostData;
}

export const ITEM_SIZE: Readonly<Record<StorageDType, number>> = {
  F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I8: 1, U8: 1, BOOL: 1,
};

export function isStorageDType(s: unknown): s is StorageDType {
  return typeof s === 'string' && Object.hasOwn(ITEM_SIZE, s);
}

/** A typed view of `count` elements over bytes; byteOffset must be a multiple of the item size. */
export function viewAs(dtype: StorageDType, buffer: ArrayBufferLike, byteOffset: number, count: number): HostData {
  switch (dtype) {
    case 'F32': return new Float32Array(buffer, byteOffset, count);
    case 'F16': case 'BF16': return new Uint16Array(buffer, byteOffset, count);
    case 'I64': return new BigInt64Array(buffer, byteOffset, count);
    case 'I32': return new Int32Array(buffer, byteOffset, count);
    case 'I8': return new Int8Array(buffer, byteOffset, count);
    case 'U8': case 'BOOL': return new Uint8Array(buffer, byteOffset, count);
  }
}

/** The data's bytes, without copying. */
export function bytesOf(data: HostData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Values as float32; an F32 tensor's own array is returned, not a copy. */
export function toFloat32(h: HostTensor): Float32Array {
  switch (h.dtype) {
    case 'F32': return h.data as Float32Array;
    case 'F16': return halfToF32(h.data as Uint16Array, 'f16');
    case 'BF16': return halfToF32(h.data as Uint16Array, 'bf16');
    case 'I64': return Float32Array.from(h.data as BigInt64Array, Number);
    default: return Float32Array.from(h.data as Int32Array | Int8Array | Uint8Array);
  }
}

/** Store float32 values as `dtype` (16-bit floats round to nearest even; integers truncate toward zero). */
export function fromFloat32(values: Float32Array, shape: number[], dtype: StorageDType): HostTensor {
  if (values.length !== numel(shape)) {
    throw new Error(`fromFloat32: ${values.length} values do not fill shape [${shape.join(', ')}]`);
  }
  const data = ((): HostData => {
    switch (dtype) {
      case 'F32': return values;
      case 'F16': return f32ToHalf(values, 'f16');
      case 'BF16': return f32ToHalf(values, 'bf16');
      case 'I64': return BigInt64Array.from(values, (v) => BigInt(Math.trunc(v)));
      case 'I32': return Int32Array.from(values);
      case 'I8': return Int8Array.from(values);
      case 'U8': return Uint8Array.from(values);
      case 'BOOL': return Uint8Array.from(values, (v) => (v !== 0 ? 1 : 0));
    }
  })();
  return { dtype, shape: [...shape], data };
}
