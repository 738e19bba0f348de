// Quantized linear weights on the js backend (engine/quantized.ts): a tensor whose handle is its own copy of the
// host parts, dequantized a row at a time, never whole. NF4/FP4: x @ dequant(W)^T in float32, the dequantized values
// rounded to the weight's dtype as bitsandbytes' dequantize_4bit does; int8: bitsandbytes' MatMul8bitLt forward
// (LLM.int8) with its float32 rounding step by step. The spec the cpu kernels are tested against.

import { f16ToF32, f32ToF16 } from '../../engine/dtype.ts';
import { checkQuantized, dequantize, dequantize4bitRange, dequantizeInt8Row, type QuantizedInt8, type QuantizedWeight } from '../../engine/quantized.ts';
import type { Arena, Tensor } from '../../engine/tensor.ts';
import { dotRow } from './matmul.ts';
import { readF32, store, target, values } from './memory.ts';

const fr = Math.fround;

/** int8_mm_dequant's 1/127² as bitsandbytes' default (torch) backend writes it; its CUDA kernel uses 6.200012e-05. */
const MM_DEQUANT = fr(6.200124e-5);

interface QuantTensor extends Tensor {
  readonly handle: QuantizedWeight;
}

/** Overwrites a freed quantized weight's scales with NaN, so that anything still reading it computes NaN. */
export function poisonQuant(t: Tensor): void {
  const q = t.handle as QuantizedWeight;
  if (q.type === 'int8') q.scb.fill(NaN);
  else if (q.absmax instanceof Float32Array) q.absmax.fill(NaN);
  else q.absmax.nestedAbsmax.fill(NaN);
}

/** A tensor of dtype q.type holding copies of q's parts. */
export function makeQuantTensor(q: QuantizedWeight, arena: Arena): Tensor {
  checkQuantized(q);
  const [OC, C] = q.shape;
  let copy: QuantizedWeight;
  if (q.type === 'int8') {
    copy = { type: 'int8', shape: [OC, C], weight: q.weight.slice(), scb: q.scb.slice(), threshold: q.threshold };
  } else {
    const a = q.absmax;
    const absmax = a instanceof Float32Array ? a.slice()
      : { codes: a.codes.slice(), nestedAbsmax: a.nestedAbsmax.slice(), nestedMap: a.nestedMap.slice(), nestedBlocksize: a.nestedBlocksize, offset: a.offset };
    copy = { type: q.type, shape: [OC, C], blocksize: q.blocksize, packed: q.packed.slice(), absmax, dtype: q.dtype };
  }
  const t: QuantTensor = { shape: [OC, C], dtype: q.type, arena, size: OC * C, handle: copy };
  return t;
}

/** The quantized weight behind a tensor (its (OC, C) shape checked by arg-checks.ts). */
function quantOf(t: Tensor): QuantizedWeight {
  const q = t.handle as QuantizedWeight;
  return q;
}

/** Row o of the weight in float32, as the forward (4-bit) or backward (both) reads it. */
function weightRow(q: QuantizedWeight, o: number, out: Float32Array, form: 'vectorwise' | 'backward'): void {
  if (q.type === 'int8') dequantizeInt8Row(q, o, out, form);
  else dequantize4bitRange(q, o * q.shape[1], q.shape[1], out);
}

/** The whole weight in float32 (download): 4-bit values, or int8_vectorwise_dequant's. */
export function dequantizeAll(t: Tensor): Float32Array {
  return dequantize(t.handle as QuantizedWeight);
}

const biasScratch = { buf: new Float32Array(0) };

// out (N, OC) = inp (N, C) @ dequant(weight (OC, C))^T + bias, or LLM.int8 for an int8 weight
export function quantMatmulForward(out: Tensor, inp: Tensor, weight: Tensor, bias: Tensor | null, N: number, C: number, OC: number): void {
  const q = quantOf(weight);
  const x = values(inp), o = target(out);
  const b = bias ? readF32(bias, biasScratch) : null;
  if (q.type === 'int8') {
    int8Forward(o, x, q, b, N, C, OC);
  } else {
    const row = new Float32Array(C);
    for (let oc = 0; oc < OC; oc++) {
      dequantize4bitRange(q, oc * C, C, row);
      for (let n = 0; n < N; n++) o[n * OC + oc] = dotRow(x, n * C, row, 0, C) + (b ? b[oc]! : 0);
    }
  }
  store(out, o);
}

// dinp (N, C) = dout (N, OC) @ dequant(weight (OC, C)), overwrite; the same sums in the same order as matmul.ts
export function quantMatmulBackwardInput(dinp: Tensor, dout: Tensor, weight: Tensor, N: number, C: number, OC: number): void {
  const q = quantOf(weight);
  const g = values(dout), dx = target(dinp);
  const row = new Float32Array(C);
  dx.fill(0, 0, N * C);
  for (let oc = 0; oc < OC; oc++) {
    weightRow(q, oc, row, 'backward');
    for (let n = 0; n < N; n++) {
      const gv = g[n * OC + oc]!;
      if (gv === 0) continue;
      const dxr = n * C;
      for (let c = 0; c < C; c++) dx[dxr + c]! += gv * row[c]!;
    }
  }
  store(dinp, dx);
}

/**
 * MatMul8bitLt's forward, bitsandbytes' default backend step by step in float32:
 * 1. int8_vectorwise_quant(x.to(float16), threshold): outliers are elements with |x| >= threshold; a row's
 *    absmax leaves them out; codes = round-half-even(x * ((1 / absmax) * 127)), 0 in every column holding an outlier.
 * 2. int32 sums of codes x weight; int8_mm_dequant: (sum * (absmax * scb)) * 6.200124e-05, then + bias.
 * 3. The outlier columns in float32: + x[:, cols] @ ((w[:, cols] * scb) / 127)^T (summed in float64 here).
 */
function int8Forward(o: Float32Array, x: Float32Array, q: QuantizedInt8, b: Float32Array | null, N: number, C: number, OC: number): void {
  const threshold = f16ToF32(f32ToF16(q.threshold));
  const outlier = new Uint8Array(C);
  const rowAbsmax = new Float32Array(N);
  const xq = new Int8Array(N * C);
  const half = (v: number) => f16ToF32(f32ToF16(v));
  for (let n = 0; n < N; n++) {
    let m = 0;
    for (let c = 0; c < C; c++) {
      const a = Math.abs(half(x[n * C + c]!));
      if (threshold > 0 && a >= threshold) outlier[c] = 1;
      else if (a > m) m = a;
    }
    rowAbsmax[n] = m;
  }
  for (let n = 0; n < N; n++) {
    const m = rowAbsmax[n]!;
    if (m === 0) continue; // 0 / 0: bitsandbytes' codes are 0
    const scale = fr(fr(1 / m) * 127);
    for (let c = 0; c < C; c++) if (!outlier[c]) xq[n * C + c] = roundHalfEven(fr(half(x[n * C + c]!) * scale));
  }
  const cols: number[] = [];
  for (let c = 0; c < C; c++) if (outlier[c]) cols.push(c);
  const wrow = new Float32Array(C);
  for (let oc = 0; oc < OC; oc++) {
    const w = q.weight.subarray(oc * C, (oc + 1) * C);
    const scb = q.scb[oc]!;
    if (cols.length) dequantizeInt8Row(q, oc, wrow, 'vectorwise');
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let c = 0; c < C; c++) acc += xq[n * C + c]! * w[c]!;
      let v = fr(fr(fr(acc) * fr(rowAbsmax[n]! * scb)) * MM_DEQUANT);
      if (b) v = fr(v + b[oc]!);
      if (cols.length) {
        let s = 0;
        for (const c of cols) s += x[n * C + c]! * wrow[c]!;
        v = fr(v + fr(s));
      }
      o[n * OC + oc] = v;
    }
  }
}

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
