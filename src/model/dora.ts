// DoRA (PEFT's use_dora) around a LoRA pair: the per-output-row norm n = ||W + s B A||, the factors the
// forward reads (m / n, 1 / n), the magnitude's initial value (m = n, as PEFT sets it) and the merged weight
// m / n * (W + s B A) (on the host, for merge.ts and the exports). The norm is computed on the host in float64 without forming W + s B A:
//   n^2 = ||W_o||^2 + 2 s B_o . (A W^T)_o + s^2 B_o (A A^T) B_o^T,
// where A W^T (r, out) runs on the backend. Not the forward/backward (linear.ts).

import type { Backend } from '../engine/backend.ts';
import { isFrozenDType } from '../engine/dtype.ts';
import type { Tensor } from '../engine/tensor.ts';
import { UserError } from '../errors.ts';
import type { Model } from './llama.ts';
import type { DoraState, LoraAdapter, LoraPair, Projection } from './lora.ts';

type DoraPair = LoraPair & { readonly dora: DoraState };

function* doraPairs(adapter: LoraAdapter): Generator<[number, Projection, DoraPair]> {
  for (const [l, layer] of adapter.layers.entries()) {
    for (const [p, pair] of layer) if (pair.dora) yield [l, p, pair as DoraPair];
  }
}

export function usesDora(adapter: LoraAdapter | null | undefined): boolean {
  return !!adapter && adapter.layers.some((layer) => [...layer.values()].some((pair) => pair.dora));
}

/** ||W + s B A|| per output row (float64), for projection p of layer l. */
async function rowNorms(m: Model, l: number, p: Projection, pair: DoraPair, scaling: number): Promise<Float64Array> {
  const { be } = m;
  const W = m.weights.layers[l]!.proj[p].weight; // (out, in)
  if (W.dtype === 'int8') {
    throw new UserError('DoRA needs the base weights\' exact values for its weight norm, which an 8-bit (LLM.int8) base does not give: load the base in 4 bits (--load_in_4bit) or unquantized');
  }
  const { inFeatures: C, outFeatures: OC } = pair;
  const r = pair.A.shape[0]!;
  const dora = pair.dora;
  if (!dora.baseNormSq) dora.baseNormSq = await rowSquares(be, W, OC, C);
  const aw = be.alloc([r, OC], 'f32', 'scratch');
  be.matmulForward(aw, pair.A, W, null, r, C, OC); // (r, out) = A W^T
  const AW = (await be.download(aw)) as Float32Array;
  be.free(aw);
  const A = (await be.download(pair.A)) as Float32Array;
  const B = (await be.download(pair.B)) as Float32Array;
  const G = new Float64Array(r * r); // A A^T (r, r)
  for (let i = 0; i < r; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = 0;
      for (let c = 0; c < C; c++) sum += A[i * C + c]! * A[j * C + c]!;
      G[i * r + j] = G[j * r + i] = sum;
    }
  }
  const n = new Float64Array(OC);
  for (let o = 0; o < OC; o++) {
    let cross = 0, quad = 0;
    for (let i = 0; i < r; i++) {
      const b = B[o * r + i]!;
      cross += b * AW[i * OC + o]!;
      for (let j = 0; j < r; j++) quad += b * G[i * r + j]! * B[o * r + j]!;
    }
    n[o] = Math.sqrt(Math.max(0, dora.baseNormSq[o]! + 2 * scaling * cross + scaling * scaling * quad));
  }
  return n;
}

/**
 * Each row's sum of squares of W (rows, cols). A dense W is reduced on the backend, as cols / rstd^2 of an rmsnorm
 * with unit weight and no epsilon, so no float32 copy of it waits in JavaScript memory for the collector (a peak
 * the memory plan would not see); a quantized or packed W is read whole, as float32. The rmsnorm's output goes to a buffer
 * of at most 128 KB, a few rows at a time, rather than a float32 copy of W (180 MB for a 7B gate_proj): the C
 * allocator reuses so small a block, where one as large as W per projection left the cpu backend's heap fragmented
 * (the memory plan's DoRA case measured 389-401 MiB of peak RSS against its 359.7 MiB plan, chunked 374-384).
 */
async function rowSquares(be: Backend, W: Tensor, rows: number, cols: number): Promise<Float64Array> {
  if (isFrozenDType(W.dtype)) {
    const w = (await be.download(W)) as Float32Array;
    return Float64Array.from({ length: rows }, (_, o) => w.subarray(o * cols, (o + 1) * cols).reduce((s, v) => s + v * v, 0));
  }
  const chunk = Math.min(rows, Math.max(1, Math.floor(2 ** 15 / cols)));
  const unit = be.alloc([cols], 'f32', 'scratch'), normed = be.alloc([chunk, cols], 'f32', 'scratch'), rstd = be.alloc([rows], 'f32', 'scratch');
  be.fill(unit, 1);
  for (let r0 = 0; r0 < rows; r0 += chunk) {
    const n = Math.min(chunk, rows - r0);
    be.rmsnormForward(be.view(normed, 0, [n, cols]), be.view(rstd, r0, [n]), be.view(W, r0 * cols, [n, cols]), unit, n, cols, 0);
  }
  const r = (await be.download(rstd)) as Float32Array;
  for (const t of [unit, normed, rstd]) be.free(t);
  return Float64Array.from(r, (v) => cols / (v * v));
}

/**
 * Recomputes every DoRA projection's m / n and 1 / n from the current A, B and m. Every pass that runs the
 * forward calls it first (compute.ts, decode.ts), so the norm the forward reads is that of the current weights.
 */
export async function refreshDora(m: Model, adapter: LoraAdapter): Promise<void> {
  const { be } = m;
  for (const [l, p, pair] of doraPairs(adapter)) {
    const n = await rowNorms(m, l, p, pair, adapter.scaling);
    const mag = (await be.download(pair.dora.magnitude)) as Float32Array;
    be.upload(pair.dora.scale, Float32Array.from(n, (v, o) => mag[o]! / v));
    be.upload(pair.dora.invNorm, Float32Array.from(n, (v) => 1 / v));
  }
}

/** PEFT's initial magnitude: m = ||W + s B A|| per output row, for the current A and B. */
export async function initDoraMagnitude(m: Model, adapter: LoraAdapter): Promise<void> {
  for (const [l, p, pair] of doraPairs(adapter)) {
    m.be.upload(pair.dora.magnitude, Float32Array.from(await rowNorms(m, l, p, pair, adapter.scaling)));
  }
}

/** A projection's merged weight, in place on the host: w (out, in) = m / ||w + delta|| * (w + delta), row by row. */
export function mergeDoraRows(w: Float32Array, delta: Float32Array, magnitude: Float32Array, outFeatures: number, inFeatures: number): void {
  const C = inFeatures;
  for (let o = 0; o < outFeatures; o++) {
    let sq = 0;
    for (let c = 0; c < C; c++) {
      const v = w[o * C + c]! + delta[o * C + c]!;
      sq += v * v;
    }
    const f = magnitude[o]! / Math.sqrt(sq);
    for (let c = 0; c < C; c++) w[o * C + c] = f * (w[o * C + c]! + delta[o * C + c]!);
  }
}
