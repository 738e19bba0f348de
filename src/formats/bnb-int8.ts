// LLM.int8 as bitsandbytes' pure-torch backend defines it: a weight quantized row by row to int8 (from the weight
// in float16, as Int8Params does) and the reference forward of an 8-bit linear with outlier columns; dequantizing
// is engine/quantized.ts's. The reference math only, float32/float64 on the host; kernels live in the backends.

import { f16ToF32, f32ToF16 } from '../engine/dtype.ts';
import { dequantize, type QuantizedInt8 } from '../engine/quantized.ts';

const f = Math.fround;

/** Quantizes the rows of a row-major (OC, C) weight: the int8 weight and each row's scb. */
export type RowQuantizer = (weight: Float32Array, OC: number, C: number) => { weight: Int8Array; scb: Float32Array };

/**
 * Row-wise int8 of a row-major (OC, C) weight: scb[o] = max |w[o, :]| in float16, weight = round(w · 127 / scb).
 * `rows`: quantizeRows below (the spec) or a native one that gives the same bytes.
 */
export function quantizeInt8Rows(weight: Float32Array, shape: readonly [number, number], threshold = 6, rows: RowQuantizer = quantizeRows): QuantizedInt8 {
  const [OC, C] = shape;
  if (weight.length !== OC * C) throw new Error(`quantizeInt8Rows: ${weight.length} values do not fill shape [${shape.join(', ')}]`);
  return { type: 'int8', shape: [OC, C], ...rows(weight, OC, C), threshold };
}

/** The spec of a RowQuantizer: the weight rounded to float16, then each row by quantizeRow. */
export const quantizeRows: RowQuantizer = (weight, OC, C) => {
  const half = roundedToF16(weight);
  const out = new Int8Array(OC * C);
  const scb = new Float32Array(OC);
  for (let o = 0; o < OC; o++) scb[o] = quantizeRow(half.subarray(o * C, (o + 1) * C), out.subarray(o * C, (o + 1) * C));
  return { weight: out, scb };
};

/**
 * The 8-bit linear y = x · wᵀ + bias for x (N, C) → (N, OC), as MatMul8bitLt: activation columns holding any
 * |x| ≥ threshold (threshold > 0) multiply the dequantized weight in full precision; the rest of each row is
 * quantized to int8 by its absmax (outliers left out), multiplied as int8 × int8 with exact integer sums, and
 * scaled by rowAbsmax · scb / 127². Computed in float64 from float32 inputs; bitsandbytes computes in float16.
 */
export function int8Linear(x: Float32Array, N: number, q: QuantizedInt8, bias: Float32Array | null, threshold = q.threshold): Float32Array {
  const [OC, C] = q.shape;
  if (x.length !== N * C) throw new Error(`int8Linear: x has ${x.length} values, expected ${N} × ${C}`);
  const outlier = outlierColumns(x, N, C, threshold);
  const w = dequantize(q);
  const xq = new Int8Array(N * C);
  const rowAbsmax = new Float32Array(N);
  for (let t = 0; t < N; t++) {
    const row = x.slice(t * C, (t + 1) * C).map((v) => (threshold > 0 && Math.abs(v) >= threshold ? 0 : v));
    rowAbsmax[t] = quantizeRow(row, xq.subarray(t * C, (t + 1) * C));
  }
  const out = new Float32Array(N * OC);
  for (let t = 0; t < N; t++) {
    for (let o = 0; o < OC; o++) {
      let dot = 0; // int32 in bitsandbytes; exact in float64 for any C below 2^37
      let full = 0;
      for (let c = 0; c < C; c++) {
        if (outlier[c]) full += x[t * C + c]! * w[o * C + c]!;
        else dot += xq[t * C + c]! * q.weight[o * C + c]!;
      }
      out[t * OC + o] = (dot * rowAbsmax[t]! * q.scb[o]!) / (127 * 127) + full + (bias ? bias[o]! : 0);
    }
  }
  return out;
}

/** Columns where some row's |x| reaches the threshold; none when the threshold is 0. */
function outlierColumns(x: Float32Array, N: number, C: number, threshold: number): Uint8Array {
  const outlier = new Uint8Array(C);
  if (threshold > 0) for (let i = 0; i < N * C; i++) if (Math.abs(x[i]!) >= threshold) outlier[i % C] = 1;
  return outlier;
}

/** round(v · 127 / absmax) into `out` (half to even, 127 / absmax as torch computes it); returns the absmax. */
function quantizeRow(row: Float32Array, out: Int8Array): number {
  let absmax = 0;
  for (let c = 0; c < row.length; c++) absmax = Math.max(absmax, Math.abs(row[c]!));
  if (absmax === 0) return 0; // out is all zeros already
  const scale = f(f(1 / absmax) * 127);
  for (let c = 0; c < row.length; c++) out[c] = roundHalfEven(f(row[c]! * scale));
  return absmax;
}

/**
 * Each value rounded to float16 and back, as f16ToF32(f32ToF16(v)): halves in the normal range round the float32
 * mantissa to 10 bits in place (nearest even); the rest (subnormal, overflowing, inf, NaN) take that slow path.
 */
function roundedToF16(values: Float32Array): Float32Array {
  const out = new Float32Array(values.length);
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const b = bits[i]!, a = b & 0x7fffffff;
    if (a >= 0x38800000 && a < 0x477fe000) outBits[i] = (b & 0x80000000) | ((a + 0xfff + ((a >>> 13) & 1)) & ~0x1fff);
    else out[i] = f16ToF32(f32ToF16(values[i]!));
  }
  return out;
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
