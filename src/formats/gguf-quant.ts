// ggml's block quantizations as llama.cpp's reference code defines them, float32 in and out: Q8_0 (32 values,
// an f16 scale and 32 int8) and Q4_0 (32 values, an f16 scale and 32 4-bit values offset by 8).
// Not the file format (gguf.ts, gguf-write.ts).

import { f16ToF32, f32ToF16 } from '../engine/dtype.ts';

const QK = 32;

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
