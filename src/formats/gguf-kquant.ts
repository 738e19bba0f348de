// ggml's Q5_K and Q6_K super-blocks (256 values), float32 in and out, in the byte layout of llama.cpp's
// block_q5_K (176 bytes) and block_q6_K (210 bytes). The fits are our own and simpler than llama.cpp's search
// (make_qkx2_quants / make_qx_quants): every scale is rounded up, so no value lands more than half a step off.
// Not Q4_K, Q4_0, Q8_0 (gguf-quant.ts) nor which tensor gets which type (export/gguf-mix.ts).

import { f16ToF32, f32ToF16 } from '../engine/dtype.ts';
import { packScaleMin, q4kScaleMin, rint } from './gguf-quant.ts';

const QK_K = 256;
export const Q5_K_BYTES = 176; // f16 d, f16 dmin, 12 bytes of 6-bit scales and mins, 32 bytes of high bits, 128 of nibbles
export const Q6_K_BYTES = 210; // 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 int8 scales, f16 d

function checkSuperBlocks(n: number, what: string): void {
  if (n % QK_K) throw new Error(`${what}: ${n} values are not whole blocks of ${QK_K}`);
}

/**
 * Q5_K: 8 sub-blocks of 32, value = d·sc·q - dmin·m with 5-bit q and 6-bit sc, m. Sub-block j's low nibbles
 * sit in byte 32·(j>>1) + l (high nibble when j is odd), its fifth bit in bit j of qh[l].
 */
export function quantizeQ5_K(x: Float32Array): Uint8Array {
  checkSuperBlocks(x.length, 'quantizeQ5_K');
  const out = new Uint8Array((x.length / QK_K) * Q5_K_BYTES);
  const view = new DataView(out.buffer);
  const his = new Float32Array(8), mins = new Float32Array(8), needed = new Float32Array(8);
  for (let b = 0; b < x.length / QK_K; b++) {
    const xb = x.subarray(b * QK_K, (b + 1) * QK_K);
    for (let j = 0; j < 8; j++) {
      let lo = 0, hi = -Infinity;
      for (const v of xb.subarray(j * 32, j * 32 + 32)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      his[j] = hi;
      mins[j] = Math.max(0, -lo); // not -0
    }
    const o = b * Q5_K_BYTES;
    const dmin = f16ToF32(f32ToF16(Math.max(...mins) / 63));
    const ms = mins.map((m) => (dmin > 0 ? Math.min(63, rint(m / dmin)) : 0));
    // The step each sub-block needs once its min is stored: its top value (plus the stored offset) at level 31.
    for (let j = 0; j < 8; j++) needed[j] = Math.max(0, his[j]! + dmin * ms[j]!) / 31;
    const d = f16ToF32(f32ToF16(Math.max(...needed) / 63));
    view.setUint16(o, f32ToF16(d), true);
    view.setUint16(o + 2, f32ToF16(dmin), true);
    const packed = out.subarray(o + 4, o + 16), qh = out.subarray(o + 16, o + 48), ql = out.subarray(o + 48, o + Q5_K_BYTES);
    for (let j = 0; j < 8; j++) {
      const sc = d > 0 ? Math.min(63, Math.ceil(needed[j]! / d)) : 0;
      packScaleMin(packed, j, sc, ms[j]!);
      const step = d * sc, offset = dmin * ms[j]!;
      for (let l = 0; l < 32; l++) {
        const level = step ? Math.max(0, Math.min(31, rint((xb[j * 32 + l]! + offset) / step))) : 0;
        const byte = (j >> 1) * 32 + l;
        ql[byte] = j % 2 ? (ql[byte]! & 0x0f) | ((level & 15) << 4) : (ql[byte]! & 0xf0) | (level & 15);
        if (level > 15) qh[l] = qh[l]! | (1 << j);
      }
    }
  }
  return out;
}

export function dequantizeQ5_K(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array((bytes.length / Q5_K_BYTES) * QK_K);
  for (let b = 0; b < bytes.length / Q5_K_BYTES; b++) {
    const o = b * Q5_K_BYTES;
    const d = f16ToF32(view.getUint16(o, true)), dmin = f16ToF32(view.getUint16(o + 2, true));
    const packed = bytes.subarray(o + 4, o + 16), qh = bytes.subarray(o + 16, o + 48), ql = bytes.subarray(o + 48, o + Q5_K_BYTES);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = q4kScaleMin(packed, j);
      for (let l = 0; l < 32; l++) {
        const byte = ql[(j >> 1) * 32 + l]!;
        const q = (j % 2 ? byte >> 4 : byte & 0x0f) + ((qh[l]! >> j) & 1) * 16;
        out[b * QK_K + j * 32 + l] = d * sc * q - dmin * m;
      }
    }
  }
  return out;
}

/** Where value i (0..255) of a Q6_K super-block keeps its low nibble and its two high bits. */
function q6kPlace(i: number): { lowByte: number; lowShift: number; highByte: number; highShift: number } {
  const half = i >> 7, r = i & 127, l = r & 31, quarter = r >> 5; // quarter 0..3 within a 128-value half
  return { lowByte: half * 64 + l + (quarter & 1) * 32, lowShift: (quarter >> 1) * 4, highByte: 128 + half * 32 + l, highShift: quarter * 2 };
}

/** Q6_K: 16 sub-blocks of 16, value = d·sc·(q - 32) with 6-bit q and int8 sc. */
export function quantizeQ6_K(x: Float32Array): Uint8Array {
  checkSuperBlocks(x.length, 'quantizeQ6_K');
  const out = new Uint8Array((x.length / QK_K) * Q6_K_BYTES);
  const view = new DataView(out.buffer);
  const needed = new Float32Array(16);
  for (let b = 0; b < x.length / QK_K; b++) {
    const xb = x.subarray(b * QK_K, (b + 1) * QK_K);
    for (let j = 0; j < 16; j++) {
      let amax = 0;
      for (const v of xb.subarray(j * 16, j * 16 + 16)) amax = Math.max(amax, Math.abs(v));
      needed[j] = amax / 31; // levels -31..31 of the -32..31 range: symmetric, so no clamping
    }
    const o = b * Q6_K_BYTES;
    const d = f16ToF32(f32ToF16(Math.max(...needed) / 127));
    view.setUint16(o + 208, f32ToF16(d), true);
    for (let j = 0; j < 16; j++) {
      const sc = d > 0 ? Math.min(127, Math.ceil(needed[j]! / d)) : 0;
      view.setInt8(o + 192 + j, sc);
      for (let l = 0; l < 16; l++) {
        const i = j * 16 + l;
        const q = (sc ? Math.max(-32, Math.min(31, rint(xb[i]! / (d * sc)))) : 0) + 32;
        const p = q6kPlace(i);
        out[o + p.lowByte] = out[o + p.lowByte]! | ((q & 15) << p.lowShift);
        out[o + p.highByte] = out[o + p.highByte]! | ((q >> 4) << p.highShift);
      }
    }
  }
  return out;
}

export function dequantizeQ6_K(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array((bytes.length / Q6_K_BYTES) * QK_K);
  for (let b = 0; b < bytes.length / Q6_K_BYTES; b++) {
    const o = b * Q6_K_BYTES;
    const d = f16ToF32(view.getUint16(o + 208, true));
    for (let i = 0; i < QK_K; i++) {
      const p = q6kPlace(i);
      const q = ((bytes[o + p.lowByte]! >> p.lowShift) & 15) | (((bytes[o + p.highByte]! >> p.highShift) & 3) << 4);
      out[b * QK_K + i] = d * view.getInt8(o + 192 + (i >> 4)) * (q - 32);
    }
  }
  return out;
}
