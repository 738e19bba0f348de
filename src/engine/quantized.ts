// A frozen linear weight (OC, C) stored the way bitsandbytes stores it, as host data: 4-bit NF4/FP4 blocks
// (± double-quantized absmax) or LLM.int8 rows, the 4-bit code tables, and bitsandbytes' dequantization of that
// host data (checked to fit its shape). What backends upload and formats read/write; quantizers and kernels live elsewhere.

import { roundingTo } from './dtype.ts';

export type QuantType = 'nf4' | 'fp4' | 'int8';

/** The absmax of each 4-bit block, double-quantized: absmax[b] = nestedMap[codes[b]] * nestedAbsmax[b / nestedBlocksize] + offset. */
export interface NestedAbsmax {
  codes: Uint8Array; // (blocks)
  nestedAbsmax: Float32Array; // (ceil(blocks / nestedBlocksize))
  nestedMap: Float32Array; // (256) bitsandbytes' dynamic map
  nestedBlocksize: number; // 256
  offset: number; // the mean of the absmax before quantizing
}

/**
 * 4-bit blocks over the row-major flattened weight; two codes a byte, the first in the high nibble. A value is
 * code × absmax in float32, rounded to `dtype` (bitsandbytes' quant_state.dtype, the dtype it was quantized from).
 */
export interface Quantized4bit {
  type: 'nf4' | 'fp4';
  shape: readonly [number, number]; // (OC, C)
  blocksize: number; // 64 or 128 (bitsandbytes also allows 32..4096)
  packed: Uint8Array; // (ceil(OC*C / 2))
  absmax: Float32Array | NestedAbsmax; // (ceil(OC*C / blocksize))
  dtype: 'f32' | 'bf16' | 'f16';
}

/** LLM.int8 row-wise weight: w[o, c] ≈ weight[o, c] * scb[o] / 127; activations columns with |x| ≥ threshold go through in float. */
export interface QuantizedInt8 {
  type: 'int8';
  shape: readonly [number, number]; // (OC, C)
  weight: Int8Array; // (OC, C)
  scb: Float32Array; // (OC) absmax per row
  threshold: number; // llm_int8_threshold (6.0); 0 = no outlier columns
}

export type QuantizedWeight = Quantized4bit | QuantizedInt8;

const fr = Math.fround;
/** 1/127 in float32, the factor bitsandbytes dequantizes int8 with (7.874015718698502e-3). */
export const INV_127 = fr(1 / 127);

/** NF4: quantiles of N(0, 1), code 0 = -1 … code 15 = 1 (bitsandbytes' get_4bit_type('nf4')). */
export const NF4_CODE: Float32Array = Float32Array.of(
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
  -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
);

/** FP4 (1 sign, 2 exponent, 1 mantissa bits) divided by its largest value 12; codes 0 and 8 are both +0. */
export const FP4_CODE: Float32Array = Float32Array.from([0, 0.0625, 8, 12, 4, 6, 2, 3, 0, -0.0625, -8, -12, -4, -6, -2, -3], (v) => fr(v / 12));

export function code4bit(type: 'nf4' | 'fp4'): Float32Array {
  return type === 'nf4' ? NF4_CODE : FP4_CODE;
}

/** Block b's absmax in float32, undoing double quantization: nestedMap[code] × nestedAbsmax[b / nestedBlocksize] + offset. */
export function blockAbsmax(q: Quantized4bit, b: number): number {
  const a = q.absmax;
  if (a instanceof Float32Array) return a[b]!;
  return fr(fr(a.nestedMap[a.codes[b]!]! * a.nestedAbsmax[Math.floor(b / a.nestedBlocksize)]!) + fr(a.offset));
}

/** out[0..n) = code value × block absmax, rounded to q.dtype, of the flattened weight's elements [off, off + n). */
export function dequantize4bitRange(q: Quantized4bit, off: number, n: number, out: Float32Array): void {
  const code = code4bit(q.type), round = roundingTo(q.dtype);
  const bs = q.blocksize;
  const end = off + n;
  let i = off, k = 0;
  while (i < end) {
    const b = Math.floor(i / bs);
    const stop = Math.min(end, (b + 1) * bs);
    const absmax = blockAbsmax(q, b);
    for (; i < stop; i++) {
      const byte = q.packed[i >> 1]!;
      out[k++] = round(code[i & 1 ? byte & 15 : byte >> 4]! * absmax);
    }
  }
}

/**
 * Row o of an int8 weight as float32. 'vectorwise': (w * scb) / 127 as int8_vectorwise_dequant (forward outlier
 * columns, download); 'backward': w * (scb / 127) as MatMul8bitLt's backward builds its weight.
 */
export function dequantizeInt8Row(q: QuantizedInt8, o: number, out: Float32Array, form: 'vectorwise' | 'backward'): void {
  const C = q.shape[1];
  const w = q.weight.subarray(o * C, (o + 1) * C);
  const scb = q.scb[o]!;
  if (form === 'vectorwise') for (let c = 0; c < C; c++) out[c] = fr(w[c]! * scb) * INV_127;
  else {
    const s = fr(scb * INV_127);
    for (let c = 0; c < C; c++) out[c] = w[c]! * s;
  }
}

/** The whole weight (OC * C values, row-major) as bitsandbytes dequantizes it: dequantize_4bit, or int8_vectorwise_dequant. */
export function dequantize(q: QuantizedWeight): Float32Array {
  const [OC, C] = q.shape;
  const out = new Float32Array(OC * C);
  if (q.type !== 'int8') dequantize4bitRange(q, 0, OC * C, out);
  else for (let o = 0; o < OC; o++) dequantizeInt8Row(q, o, out.subarray(o * C, (o + 1) * C), 'vectorwise');
  return out;
}

/** Throws, naming the part, unless every part of q has the length its shape and blocksize call for. */
export function checkQuantized(q: QuantizedWeight): void {
  const [OC, C] = q.shape;
  const where = `quantized ${q.type} weight [${OC}, ${C}]`;
  const need = (ok: boolean, what: string) => {
    if (!ok) throw new Error(`${where}: ${what}`);
  };
  need(Number.isInteger(OC) && Number.isInteger(C) && OC > 0 && C > 0, 'the shape must be two positive integers');
  const n = OC * C;
  if (q.type === 'int8') {
    need(q.weight.length === n, `weight has ${q.weight.length} values, expected ${n}`);
    need(q.scb.length === OC, `scb has ${q.scb.length} values, expected ${OC}`);
    need(Number.isFinite(q.threshold) && q.threshold >= 0, `threshold must be a number >= 0, got ${q.threshold}`);
    return;
  }
  need(Number.isInteger(q.blocksize) && q.blocksize > 0, `blocksize must be a positive integer, got ${q.blocksize}`);
  need(['f32', 'bf16', 'f16'].includes(q.dtype), `dtype must be f32, bf16 or f16, got ${q.dtype}`);
  const blocks = Math.ceil(n / q.blocksize);
  need(q.packed.length === Math.ceil(n / 2), `packed has ${q.packed.length} bytes, expected ${Math.ceil(n / 2)}`);
  const a = q.absmax;
  if (a instanceof Float32Array) {
    need(a.length === blocks, `absmax has ${a.length} values, expected ${blocks}`);
    return;
  }
  need(a.codes.length === blocks, `absmax codes has ${a.codes.length} values, expected ${blocks}`);
  need(Number.isInteger(a.nestedBlocksize) && a.nestedBlocksize > 0, `nestedBlocksize must be a positive integer, got ${a.nestedBlocksize}`);
  const nested = Math.ceil(blocks / a.nestedBlocksize);
  need(a.nestedAbsmax.length === nested, `nestedAbsmax has ${a.nestedAbsmax.length} values, expected ${nested}`);
  need(a.nestedMap.length === 256, `nestedMap has ${a.nestedMap.length} values, expected 256`);
}
