// The js reference backend: every op of the Backend interface in plain TypeScript, synchronous.
// It is the spec the native backends are tested against; it is not meant to be fast. Each op first runs the
// shared argument checks (../arg-checks.ts); a freed tensor is poisoned, and any later use of it throws.

import type { Backend, ComputeDType } from '../../engine/backend.ts';
import { isQuantDType, type DType } from '../../engine/dtype.ts';
import type { QuantizedWeight } from '../../engine/quantized.ts';
import { numel, type Arena, type Tensor } from '../../engine/tensor.ts';
import { checkArgs, checkDownload, checkPackWeight, checkView } from '../arg-checks.ts';
import { TensorLedger } from '../tensor-ledger.ts';
import { attentionBackward, attentionForward } from './attention.ts';
import { attentionPaged } from './attention-paged.ts';
import { columnDot, scaleColumns } from './columns.ts';
import * as elementwise from './elementwise.ts';
import * as layers from './layers.ts';
import { adamw, argmaxRows, crossEntropy, sumSquares } from './loss-optim.ts';
import { matmulBackward, matmulForward } from './matmul.ts';
import { data, denseDType, makeTensor, poison, readF32, writeF32 } from './memory.ts';
import { dequantizeAll, makeQuantTensor, poisonQuant, quantMatmulBackwardInput, quantMatmulForward } from './quant.ts';

export class JsBackend implements Backend {
  readonly name = 'js' as const;
  private readonly ledger = new TensorLedger();

  alloc(shape: readonly number[], dtype: DType, arena: Arena): Tensor {
    return this.ledger.track(makeTensor(shape, dtype, arena));
  }

  uploadQuantized(q: QuantizedWeight, arena: Arena): Tensor {
    return this.ledger.track(makeQuantTensor(q, arena));
  }

  /** The reference keeps one layout. */
  packWeight(w: Tensor): Tensor | null {
    checkPackWeight(w);
    return null;
  }

  upload(t: Tensor, values: Float32Array | Uint16Array | Int32Array): void {
    checkArgs.upload(t, values);
    if (values instanceof Float32Array) writeF32(t, values);
    else (data(t) as Uint16Array | Int32Array).set(values);
  }

  async download(t: Tensor, into?: Float32Array): Promise<Float32Array | Int32Array> {
    checkDownload(t, into);
    if (t.dtype === 'i32') return (data(t) as Int32Array).slice();
    const values = isQuantDType(t.dtype) ? dequantizeAll(t) : readF32(t, { buf: new Float32Array(t.size) }).slice();
    if (!into) return values;
    into.set(values);
    return into;
  }

  view(t: Tensor, offset: number, shape: readonly number[]): Tensor {
    checkView(t, offset, shape);
    return this.ledger.trackView(t, makeTensor(shape, denseDType(t), t.arena, data(t).subarray(offset, offset + numel(shape))));
  }

  /** Poisons what it frees (NaN floats, i32 -2^31) so that a stale use shows up in the reference first. */
  free(t: Tensor): void {
    if (this.ledger.free(t)) poisonFreed(t);
  }

  freeArena(arena: Arena): void {
    for (const t of this.ledger.freeArena(arena)) poisonFreed(t);
  }

  async sync(): Promise<void> {}

  fill(t: Tensor, value: number): void {
    checkArgs.fill(t, value);
    elementwise.fill(t, value);
  }

  copy(dst: Tensor, src: Tensor): void {
    checkArgs.copy(dst, src);
    if (dst.dtype === src.dtype) (data(dst) as Float32Array).set(data(src) as Float32Array);
    else writeF32(dst, readF32(src, { buf: new Float32Array(src.size) }));
  }

  add(out: Tensor, a: Tensor, b: Tensor): void {
    checkArgs.add(out, a, b);
    elementwise.add(out, a, b);
  }

  axpy(dst: Tensor, src: Tensor, scale: number): void {
    checkArgs.axpy(dst, src, scale);
    elementwise.axpy(dst, src, scale);
  }

  scale(t: Tensor, s: number): void {
    checkArgs.scale(t, s);
    elementwise.scale(t, s);
  }

  copyTime(dst: Tensor, src: Tensor, B: number, W: number, Tdst: number, dstT0: number, Tsrc: number, srcT0: number, count: number): void {
    checkArgs.copyTime(dst, src, B, W, Tdst, dstT0, Tsrc, srcT0, count);
    elementwise.copyTime(dst, src, B, W, Tdst, dstT0, Tsrc, srcT0, count);
  }

  dropout(out: Tensor, inp: Tensor, p: number, seed: number): void {
    checkArgs.dropout(out, inp, p, seed);
    elementwise.dropout(out, inp, p, seed);
  }

  scaleColumns(out: Tensor, inp: Tensor, scale: Tensor, bias: Tensor | null, N: number, OC: number): void {
    checkArgs.scaleColumns(out, inp, scale, bias, N, OC);
    scaleColumns(out, inp, scale, bias, N, OC);
  }

  columnDot(out: Tensor, a: Tensor, b: Tensor, scale: Tensor, N: number, OC: number): void {
    checkArgs.columnDot(out, a, b, scale, N, OC);
    columnDot(out, a, b, scale, N, OC);
  }

  embeddingForward(out: Tensor, ids: Tensor, table: Tensor, N: number, C: number): void {
    checkArgs.embeddingForward(out, ids, table, N, C);
    layers.embeddingForward(out, ids, table, N, C);
  }

  embeddingBackward(dtable: Tensor, dout: Tensor, ids: Tensor, N: number, C: number): void {
    checkArgs.embeddingBackward(dtable, dout, ids, N, C);
    layers.embeddingBackward(dtable, dout, ids, N, C);
  }
  /** engine/backend.ts' "Compute dtype". */
  private computeDtype: ComputeDType = 'f32';

  setComputeDtype(dtype: ComputeDType): void {
    this.computeDtype = dtype;
  }

  private bf16Products = (weight: Tensor) => this.computeDtype === 'bf16' && weight.dtype === 'bf16';

  matmulForward(out: Tensor, inp: Tensor, weight: Tensor, bias: Tensor | null, N: number, C: number, OC: number): void {
    checkArgs.matmulForward(out, inp, weight, bias, N, C, OC);
    if (isQuantDType(weight.dtype)) quantMatmulForward(out, inp, weight, bias, N, C, OC);
    else matmulForward(out, inp, weight, bias, N, C, OC, this.bf16Products(weight));
  }

  matmulBackward(
    dinp: Tensor | null, dweight: Tensor | null, dbias: Tensor | null,
    dout: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, OC: number,
  ): void {
    checkArgs.matmulBackward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    if (!isQuantDType(weight.dtype)) return matmulBackward(dinp, dweight, dbias, dout, inp, weight, N, C, OC, this.bf16Products(weight));
    if (dinp) quantMatmulBackwardInput(dinp, dout, weight, N, C, OC);
    if (dbias) matmulBackward(null, null, dbias, dout, inp, weight, N, C, OC);
  }

  rmsnormForward(out: Tensor, rstd: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, eps: number): void {
    checkArgs.rmsnormForward(out, rstd, inp, weight, N, C, eps);
    layers.rmsnormForward(out, rstd, inp, weight, N, C, eps);
  }

  rmsnormBackward(dinp: Tensor, dweight: Tensor | null, dout: Tensor, inp: Tensor, weight: Tensor, rstd: Tensor, N: number, C: number): void {
    checkArgs.rmsnormBackward(dinp, dweight, dout, inp, weight, rstd, N, C);
    layers.rmsnormBackward(dinp, dweight, dout, inp, weight, rstd, N, C);
  }

  rope(x: Tensor, cos: Tensor, sin: Tensor, B: number, T: number, H: number, HD: number, inverse: boolean): void {
    checkArgs.rope(x, cos, sin, B, T, H, HD, inverse);
    layers.rope(x, cos, sin, B, T, H, HD, inverse);
  }

  attentionPaged(
    out: Tensor, q: Tensor, k: Tensor, v: Tensor, kCache: readonly Tensor[], vCache: readonly Tensor[],
    rows: Int32Array, blocks: Int32Array, N: number, NH: number, NKV: number, HD: number, blockTokens: number, blocksPerChunk: number,
  ): void {
    checkArgs.attentionPaged(out, q, k, v, kCache, vCache, rows, blocks, N, NH, NKV, HD, blockTokens, blocksPerChunk);
    attentionPaged(out, q, k, v, kCache, vCache, rows, blocks, N, NH, NKV, HD, blockTokens, blocksPerChunk);
  }

  attentionForward(
    out: Tensor, lse: Tensor, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null,
    B: number, Tq: number, Tk: number, Tkv: number, NH: number, NKV: number, HD: number, segments: Tensor | null = null,
  ): void {
    checkArgs.attentionForward(out, lse, q, k, v, mask, B, Tq, Tk, Tkv, NH, NKV, HD, segments);
    attentionForward(out, lse, q, k, v, mask, B, Tq, Tk, Tkv, NH, NKV, HD, segments);
  }

  attentionBackward(
    dq: Tensor, dk: Tensor, dv: Tensor, dout: Tensor, out: Tensor, lse: Tensor,
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null,
    B: number, T: number, NH: number, NKV: number, HD: number, segments: Tensor | null = null,
  ): void {
    checkArgs.attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, mask, B, T, NH, NKV, HD, segments);
    attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, mask, B, T, NH, NKV, HD, segments);
  }

  swigluForward(out: Tensor, gate: Tensor, up: Tensor, n: number): void {
    checkArgs.swigluForward(out, gate, up, n);
    layers.swigluForward(out, gate, up, n);
  }

  swigluBackward(dgate: Tensor, dup: Tensor, dout: Tensor, gate: Tensor, up: Tensor, n: number): void {
    checkArgs.swigluBackward(dgate, dup, dout, gate, up, n);
    layers.swigluBackward(dgate, dup, dout, gate, up, n);
  }

  crossEntropy(losses: Tensor, dlogits: Tensor | null, logits: Tensor, targets: Tensor, N: number, V: number, gradScale: number): void {
    checkArgs.crossEntropy(losses, dlogits, logits, targets, N, V, gradScale);
    crossEntropy(losses, dlogits, logits, targets, N, V, gradScale);
  }

  argmaxRows(out: Tensor, x: Tensor, R: number, V: number): void {
    checkArgs.argmaxRows(out, x, R, V);
    argmaxRows(out, x, R, V);
  }

  sumSquares(out: Tensor, t: Tensor): void {
    checkArgs.sumSquares(out, t);
    sumSquares(out, t);
  }

  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void {
    checkArgs.adamw(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step);
    adamw(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step);
  }
}

function poisonFreed(t: Tensor): void {
  if (isQuantDType(t.dtype)) poisonQuant(t);
  else poison(t);
}
