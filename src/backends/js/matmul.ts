// Linear layers for the js backend, nn.Linear layout: weight (OC, C), out = inp @ weight^T + bias.
// Reference code: straightforward loops with contiguous inner dots, readable before fast. Dense weights only
// (quantized ones: quant.ts). out, inp, dout and dinp may be f32, bf16 or f16 (read widened, written rounded);
// dweight and dbias accumulate in f32.

import { bf16ToF32, f32ToBf16 } from '../../engine/dtype.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { f32, readF32, store, target, values } from './memory.ts';

const weightScratch = { buf: new Float32Array(0) };
const biasScratch = { buf: new Float32Array(0) };

/** The input of a bf16 weight's products in the bf16 compute mode (engine/backend.ts): a copy rounded to bf16. */
function roundedToBf16(v: Float32Array): Float32Array {
  return v.map((x) => bf16ToF32(f32ToBf16(x)));
}

// out (N, OC) = inp (N, C) @ weight (OC, C)^T + bias (OC); bf16Products: inp rounded to bf16 first
export function matmulForward(
  out: Tensor, inp: Tensor, weight: Tensor, bias: Tensor | null, N: number, C: number, OC: number, bf16Products = false,
): void {
  const x = bf16Products ? roundedToBf16(values(inp)) : values(inp), o = target(out);
  const w = readF32(weight, weightScratch);
  const b = bias ? readF32(bias, biasScratch) : null;
  for (let n = 0; n < N; n++) {
    for (let oc = 0; oc < OC; oc++) o[n * OC + oc] = dotRow(x, n * C, w, oc * C, C) + (b ? b[oc]! : 0);
  }
  store(out, o);
}

/** sum of x[xr + c] * w[wr + c] over c < C, in four float64 partial sums (shared with quant.ts). */
export function dotRow(x: Float32Array, xr: number, w: Float32Array, wr: number, C: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let c = 0;
  for (; c + 3 < C; c += 4) {
    s0 += x[xr + c]! * w[wr + c]!;
    s1 += x[xr + c + 1]! * w[wr + c + 1]!;
    s2 += x[xr + c + 2]! * w[wr + c + 2]!;
    s3 += x[xr + c + 3]! * w[wr + c + 3]!;
  }
  for (; c < C; c++) s0 += x[xr + c]! * w[wr + c]!;
  return s0 + s1 + s2 + s3;
}

// dinp (N, C) = dout @ weight ; dweight (OC, C) += dout^T @ inp ; dbias (OC) += column sums of dout;
// bf16Products: dinp's products take dout rounded to bf16
export function matmulBackward(
  dinp: Tensor | null, dweight: Tensor | null, dbias: Tensor | null,
  dout: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, OC: number, bf16Products = false,
): void {
  const g = values(dout);
  if (dinp) {
    const dx = target(dinp);
    const gd = bf16Products ? roundedToBf16(values(dout)) : g;
    const w = readF32(weight, weightScratch);
    dx.fill(0, 0, N * C);
    for (let n = 0; n < N; n++) {
      const dxr = n * C;
      for (let oc = 0; oc < OC; oc++) {
        const gv = gd[n * OC + oc]!;
        if (gv === 0) continue;
        const wr = oc * C;
        for (let c = 0; c < C; c++) dx[dxr + c]! += gv * w[wr + c]!;
      }
    }
    store(dinp, dx);
  }
  if (dweight) {
    const dw = f32(dweight), x = values(inp);
    for (let n = 0; n < N; n++) {
      const xr = n * C;
      for (let oc = 0; oc < OC; oc++) {
        const gv = g[n * OC + oc]!;
        if (gv === 0) continue;
        const wr = oc * C;
        for (let c = 0; c < C; c++) dw[wr + c]! += gv * x[xr + c]!;
      }
    }
  }
  if (dbias) {
    const db = f32(dbias);
    for (let n = 0; n < N; n++) for (let oc = 0; oc < OC; oc++) db[oc]! += g[n * OC + oc]!;
  }
}
