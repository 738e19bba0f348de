// ggml's block quantizations, float32 in and out: Q8_0 (32 values, an f16 scale and 32 int8) and Q4_0 (32 values,
// an f16 scale and 32 4-bit values offset by 8) as llama.cpp's reference code defines them, and Q4_K (256-value
// super-blocks) in ggml's layout with a simpler fit of our own.
// Not Q5_K and Q6_K (gguf-kquant.ts) nor the file format (gguf.ts, gguf-write.ts).

import { f16ToF32, f32ToF16 } from '../engine/dtype.ts';
import { dequantizeQ5_K, dequantizeQ6_K } from './gguf-kquant.ts';

const QK = 32;

export type QuantType = 'Q8_0' | 'Q4_0' | 'Q4_K' | 'Q5_K' | 'Q6_K';

/** The values of a quantized tensor's bytes. */
export function dequantize(type: QuantType, bytes: Uint8Array): Float32Array {
  switch (type) {
    case 'Q8_0': return dequantizeQ8_0(bytes);
    case 'Q4_0': return dequantizeQ4_0(bytes);
    case 'Q4_K': return dequantizeQ4_K(bytes);
    case 'Q5_K': return dequantizeQ5_K(bytes);
    case 'Q6_K': return dequantizeQ6_K(bytes);
  }
}

/** C's roundf: halves away from zero. */
function roundf(x: number): number {
  return Math.sign(x) * Math.floor(Math.abs(x) + 0.5);
}

function checkBlocks(n: number, what: string): void {
  if (n % QK) throw new Error(`${what}: ${n} values are not whole blocks of ${QK}`);
}

/** d = max|x| / 127, q = round(x / d). */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  checkBlocks(x.length, 'quantizeQ8_0');
  const out = new Uint8Array((x.length / QK) * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < x.length / QK; b++) {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[b * QK + j]!));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    view.setUint16(b * 34, f32ToF16(d), true);
    for (let j = 0; j < QK; j++) view.setInt8(b * 34 + 2 + j, roundf(x[b * QK + j]! * id));
  }
  return out;
}

export function dequantizeQ8_0(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array((bytes.length / 34) * QK);
  for (let b = 0; b < bytes.length / 34; b++) {
    const d = f16ToF32(view.getUint16(b * 34, true));
    for (let j = 0; j < QK; j++) out[b * QK + j] = view.getInt8(b * 34 + 2 + j) * d;
  }
  return out;
}

/** d = (the value of largest magnitude) / -8, q = min(15, trunc(x / d + 8.5)); value j and j+16 share a byte. */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  checkBlocks(x.length, 'quantizeQ4_0');
  const out = new Uint8Array((x.length / QK) * 18);
  const view = new DataView(out.buffer);
  const q = new Uint8Array(QK);
  for (let b = 0; b < x.length / QK; b++) {
    let amax = 0, max = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[b * QK + j]!;
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = max / -8;
    const id = d ? 1 / d : 0;
    view.setUint16(b * 18, f32ToF16(d), true);
    for (let j = 0; j < QK; j++) q[j] = Math.min(15, Math.trunc(x[b * QK + j]! * id + 8.5));
    for (let j = 0; j < QK / 2; j++) out[b * 18 + 2 + j] = q[j]! | (q[j + QK / 2]! << 4);
  }
  return out;
}

export function dequantizeQ4_0(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array((bytes.length / 18) * QK);
  for (let b = 0; b < bytes.length / 18; b++) {
    const d = f16ToF32(view.getUint16(b * 18, true));
    for (let j = 0; j < QK / 2; j++) {
      const byte = bytes[b * 18 + 2 + j]!;
      out[b * QK + j] = ((byte & 0x0f) - 8) * d;
      out[b * QK + j + QK / 2] = ((byte >> 4) - 8) * d;
    }
  }
  return out;
}

const QK_K = 256;
const Q4_K_BYTES = 144; // f16 d, f16 dmin, 12 bytes of 6-bit sub-block scales and mins, 128 bytes of nibbles

/** Round half to even, as ggml's nearest_int does. */
export function rint(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Sub-block j's 6-bit scale and min from the 12 packed bytes (j < 4: low 6 bits; else split 4 + 2 bits). */
export function q4kScaleMin(s: Uint8Array, j: number): [number, number] {
  if (j < 4) return [s[j]! & 63, s[j + 4]! & 63];
  return [(s[j + 4]! & 0x0f) | ((s[j - 4]! >> 6) << 4), (s[j + 4]! >> 4) | ((s[j]! >> 6) << 4)];
}

export function packScaleMin(s: Uint8Array, j: number, sc: number, m: number): void {
  if (j < 4) {
    s[j] = (s[j]! & 0xc0) | sc;
    s[j + 4] = (s[j + 4]! & 0xc0) | m;
  } else {
    s[j + 4] = (sc & 0x0f) | ((m & 0x0f) << 4);
    s[j - 4] = (s[j - 4]! & 0x3f) | ((sc >> 4) << 6);
    s[j] = (s[j]! & 0x3f) | ((m >> 4) << 6);
  }
}

/**
 * Q4_K super-blocks of 256 = 8 sub-blocks of 32, value = d·sc·q - dmin·m with 4-bit q and 6-bit sc, m.
 * Our own simple fit: each sub-block's range [min(0, x), max x] in 15 steps, then every value rounded with
 * the scale and min as stored (not llama.cpp's iterative search; the file format is the same).
 */
export function quantizeQ4_K(x: Float32Array): Uint8Array {
  if (x.length % QK_K) throw new Error(`quantizeQ4_K: ${x.length} values are not whole blocks of ${QK_K}`);
  const out = new Uint8Array((x.length / QK_K) * Q4_K_BYTES);
  const view = new DataView(out.buffer);
  const scales = new Float32Array(8), mins = new Float32Array(8);
  for (let b = 0; b < x.length / QK_K; b++) {
    const xb = x.subarray(b * QK_K, (b + 1) * QK_K);
    for (let j = 0; j < 8; j++) {
      const sub = xb.subarray(j * 32, j * 32 + 32);
      let lo = 0, hi = -Infinity;
      for (const v of sub) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      scales[j] = (hi - lo) / 15;
      mins[j] = -lo;
    }
    const maxScale = Math.max(...scales), maxMin = Math.max(...mins);
    const o = b * Q4_K_BYTES;
    view.setUint16(o, f32ToF16(maxScale / 63), true);
    view.setUint16(o + 2, f32ToF16(maxMin / 63), true);
    const packed = out.subarray(o + 4, o + 16);
    for (let j = 0; j < 8; j++) {
      packScaleMin(packed, j, maxScale > 0 ? Math.min(63, rint((63 / maxScale) * scales[j]!)) : 0, maxMin > 0 ? Math.min(63, rint((63 / maxMin) * mins[j]!)) : 0);
    }
    const d = f16ToF32(view.getUint16(o, true)), dmin = f16ToF32(view.getUint16(o + 2, true));
    const q = out.subarray(o + 16, o + Q4_K_BYTES);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = q4kScaleMin(packed, j);
      const step = d * sc, offset = dmin * m;
      for (let l = 0; l < 32; l++) {
        const level = step ? Math.max(0, Math.min(15, rint((xb[j * 32 + l]! + offset) / step))) : 0;
        const byte = (j >> 1) * 32 + l; // sub-blocks 2k and 2k+1 share 32 bytes: low and high nibbles
        q[byte] = j % 2 ? (q[byte]! & 0x0f) | (level << 4) : (q[byte]! & 0xf0) | level;
      }
    }
  }
  return out;
}

export function dequantizeQ4_K(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array((bytes.length / Q4_K_BYTES) * QK_K);
  for (let b = 0; b < bytes.length / Q4_K_BYTES; b++) {
    const o = b * Q4_K_BYTES;
    const d = f16ToF32(view.getUint16(o, true)), dmin = f16ToF32(view.getUint16(o + 2, true));
    const packed = bytes.subarray(o + 4, o + 16), q = bytes.subarray(o + 16, o + Q4_K_BYTES);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = q4kScaleMin(packed, j);
      for (let l = 0; l < 32; l++) {
        const byte = q[(j >> 1) * 32 + l]!;
        out[b * QK_K + j * 32 + l] = d * sc * (j % 2 ? byte >> 4 : byte & 0x0f) - dmin * m;
      }
    }
  }
  return out;
}
