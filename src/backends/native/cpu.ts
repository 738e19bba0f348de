// The native CPU backend: every Backend op runs synchronously in the C++ addon (native/cpu), threaded and
// vectorized; tensors are addon-owned buffers behind opaque handles (a quantized weight's: all its parts).
// Arguments are checked here (../arg-checks.ts) before the addon is called; the addon's own checks only keep
// a direct call from corrupting memory.
// `cpuLoader` is what select.ts uses.

import type { Backend, ComputeDType } from '../../engine/backend.ts';
import type { DType } from '../../engine/dtype.ts';
import { checkQuantized, type QuantizedWeight } from '../../engine/quantized.ts';
import { numel, type Arena, type Tensor } from '../../engine/tensor.ts';
import { checkArgs, checkDownload, checkPackWeight, checkView } from '../arg-checks.ts';
import { TensorLedger } from '../tensor-ledger.ts';
import { DTYPE_CODE, loadCpuAddon, type CpuAddon, type Handle } from './cpu-addon.ts';
import { applyMeasuredGemm } from './cpu-gemm-timing.ts';

interface CpuTensor extends Tensor {
  readonly handle: Handle;
}

const h = (t: Tensor) => (t as CpuTensor).handle;
const hOrNull = (t: Tensor | null) => (t ? (t as CpuTensor).handle : null);

export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  private readonly ledger = new TensorLedger();

  /** How the GEMM kernels were chosen, when not by the addon's default (cpuLoader sets it). */
  gemmOrigin: string | null = null;

  constructor(readonly addon: CpuAddon) {}

  /** Threads, GEMM kernel ('openblas', 'own' or a table of both) and SIMD level, for logs and benchmarks. */
  describe(): string {
    const i = this.addon.info();
    const own = `own ${i.gemmIsa}`, blas = `OpenBLAS (${i.blasCore ?? '?'})`;
    const gemm = i.gemm === 'openblas' ? `${blas} GEMM` : i.gemm === 'own' ? `${own} GEMM`
      : `GEMM ${own} or ${blas} by weight dtype, large/skinny: ${i.gemmTable}`;
    const compute = i.computeDtype === 'bf16' ? ', bf16 products for bf16 weights (AVX512_BF16)' : '';
    return `${i.threads} threads, ${gemm}${this.gemmOrigin ? ` (${this.gemmOrigin})` : ''}${compute}, ${i.isa} kernels`;
  }

  alloc(shape: readonly number[], dtype: DType, arena: Arena): Tensor {
    const size = numel(shape);
    return this.ledger.track({ shape: [...shape], dtype, arena, size, handle: this.addon.alloc(size, DTYPE_CODE[dtype], arena === 'weights') });
  }

  /** The addon keeps its own copy of the parts in one buffer; the kernels dequantize from it tile by tile. */
  uploadQuantized(q: QuantizedWeight, arena: Arena): Tensor {
    checkQuantized(q);
    const [OC, C] = q.shape;
    let handle: Handle;
    if (q.type === 'int8') {
      handle = this.addon.uploadInt8(OC, C, q.weight, q.scb, q.threshold);
    } else if (q.absmax instanceof Float32Array) {
      handle = this.addon.upload4bit(q.type, OC, C, q.blocksize, q.packed, q.absmax, null, null, null, 0, 0, DTYPE_CODE[q.dtype]);
    } else {
      const a = q.absmax;
      handle = this.addon.upload4bit(q.type, OC, C, q.blocksize, q.packed, null, a.codes, a.nestedAbsmax, a.nestedMap, a.nestedBlocksize, a.offset, DTYPE_CODE[q.dtype]);
    }
    return this.ledger.track({ shape: [OC, C], dtype: q.type, arena, size: OC * C, handle });
  }

  /** Tiles of 48 output rows with column pairs interleaved, which vdpbf16ps reads without summing across lanes. */
  packWeight(w: Tensor): Tensor | null {
    checkPackWeight(w);
    if (w.dtype !== 'bf16' || !this.addon.info().bf16Dot) return null;
    const [OC, C] = w.shape as [number, number];
    return this.ledger.track({ shape: [OC, C], dtype: 'bf16-packed', arena: w.arena, size: OC * C, handle: this.addon.packBf16(h(w), OC, C) });
  }

  upload(t: Tensor, data: Float32Array | Uint16Array | Int32Array): void {
    checkArgs.upload(t, data);
    this.addon.upload(h(t), data);
  }

  async download(t: Tensor, into?: Float32Array): Promise<Float32Array | Int32Array> {
    checkDownload(t, into);
    return this.addon.download(h(t), into);
  }

  view(t: Tensor, offset: number, shape: readonly number[]): Tensor {
    checkView(t, offset, shape);
    const size = numel(shape);
    const v: CpuTensor = { shape: [...shape], dtype: t.dtype, arena: t.arena, size, handle: this.addon.view(h(t), offset, size) };
    return this.ledger.trackView(t, v);
  }

  free(t: Tensor): void {
    if (this.ledger.free(t)) this.addon.free(h(t));
  }

  freeArena(arena: Arena): void {
    for (const t of this.ledger.freeArena(arena)) this.addon.free(h(t));
  }

  async sync(): Promise<void> {}

  fill(t: Tensor, value: number): void {
    checkArgs.fill(t, value);
    this.addon.fill(h(t), value);
  }

  copy(dst: Tensor, src: Tensor): void {
    checkArgs.copy(dst, src);
    this.addon.copy(h(dst), h(src));
  }

  add(out: Tensor, a: Tensor, b: Tensor): void {
    checkArgs.add(out, a, b);
    this.addon.add(h(out), h(a), h(b));
  }

  axpy(dst: Tensor, src: Tensor, scale: number): void {
    checkArgs.axpy(dst, src, scale);
    this.addon.axpy(h(dst), h(src), scale);
  }

  scale(t: Tensor, s: number): void {
    checkArgs.scale(t, s);
    this.addon.scale(h(t), s);
  }

  copyTime(dst: Tensor, src: Tensor, B: number, W: number, Tdst: number, dstT0: number, Tsrc: number, srcT0: number, count: number): void {
    checkArgs.copyTime(dst, src, B, W, Tdst, dstT0, Tsrc, srcT0, count);
    this.addon.copyTime(h(dst), h(src), B, W, Tdst, dstT0, Tsrc, srcT0, count);
  }

  dropout(out: Tensor, inp: Tensor, p: number, seed: number): void {
    checkArgs.dropout(out, inp, p, seed);
    this.addon.dropout(h(out), h(inp), p, seed);
  }

  scaleColumns(out: Tensor, inp: Tensor, scale: Tensor, bias: Tensor | null, N: number, OC: number): void {
    checkArgs.scaleColumns(out, inp, scale, bias, N, OC);
    this.addon.scaleColumns(h(out), h(inp), h(scale), hOrNull(bias), N, OC);
  }

  columnDot(out: Tensor, a: Tensor, b: Tensor, scale: Tensor, N: number, OC: number): void {
    checkArgs.columnDot(out, a, b, scale, N, OC);
    this.addon.columnDot(h(out), h(a), h(b), h(scale), N, OC);
  }

  embeddingForward(out: Tensor, ids: Tensor, table: Tensor, N: number, C: number): void {
    checkArgs.embeddingForward(out, ids, table, N, C);
    this.addon.embeddingForward(h(out), h(ids), h(table), N, C);
  }

  embeddingBackward(dtable: Tensor, dout: Tensor, ids: Tensor, N: number, C: number): void {
    checkArgs.embeddingBackward(dtable, dout, ids, N, C);
    this.addon.embeddingBackward(h(dtable), h(dout), h(ids), N, C);
  }

  /** bf16 needs AVX512_BF16: the addon's error says so (applyComputeDtype turns it into a UserError). */
  setComputeDtype(dtype: ComputeDType): void {
    this.addon.setComputeDtype(dtype);
  }

  matmulForward(out: Tensor, inp: Tensor, weight: Tensor, bias: Tensor | null, N: number, C: number, OC: number): void {
    checkArgs.matmulForward(out, inp, weight, bias, N, C, OC);
    this.addon.matmulForward(h(out), h(inp), h(weight), hOrNull(bias), N, C, OC);
  }

  matmulBackward(
    dinp: Tensor | null, dweight: Tensor | null, dbias: Tensor | null,
    dout: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, OC: number,
  ): void {
    checkArgs.matmulBackward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    this.addon.matmulBackward(hOrNull(dinp), hOrNull(dweight), hOrNull(dbias), h(dout), h(inp), h(weight), N, C, OC);
  }

  rmsnormForward(out: Tensor, rstd: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, eps: number): void {
    checkArgs.rmsnormForward(out, rstd, inp, weight, N, C, eps);
    this.addon.rmsnormForward(h(out), h(rstd), h(inp), h(weight), N, C, eps);
  }

  rmsnormBackward(dinp: Tensor, dweight: Tensor | null, dout: Tensor, inp: Tensor, weight: Tensor, rstd: Tensor, N: number, C: number): void {
    checkArgs.rmsnormBackward(dinp, dweight, dout, inp, weight, rstd, N, C);
    this.addon.rmsnormBackward(h(dinp), hOrNull(dweight), h(dout), h(inp), h(weight), h(rstd), N, C);
  }

  rope(x: Tensor, cos: Tensor, sin: Tensor, B: number, T: number, H: number, HD: number, inverse: boolean): void {
    checkArgs.rope(x, cos, sin, B, T, H, HD, inverse);
    this.addon.rope(h(x), h(cos), h(sin), B, T, H, HD, inverse);
  }

  attentionForward(
    out: Tensor, lse: Tensor, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null,
    B: number, Tq: number, Tk: number, Tkv: number, NH: number, NKV: number, HD: number, segments: Tensor | null = null,
  ): void {
    checkArgs.attentionForward(out, lse, q, k, v, mask, B, Tq, Tk, Tkv, NH, NKV, HD, segments);
    this.addon.attentionForward(h(out), h(lse), h(q), h(k), h(v), hOrNull(mask), hOrNull(segments), B, Tq, Tk, Tkv, NH, NKV, HD);
  }

  attentionPaged(
    out: Tensor, q: Tensor, k: Tensor, v: Tensor, kCache: readonly Tensor[], vCache: readonly Tensor[],
    rows: Int32Array, blocks: Int32Array, N: number, NH: number, NKV: number, HD: number, blockTokens: number, blocksPerChunk: number,
  ): void {
    checkArgs.attentionPaged(out, q, k, v, kCache, vCache, rows, blocks, N, NH, NKV, HD, blockTokens, blocksPerChunk);
    const R = rows.length / 3;
    this.addon.attentionPaged(
      h(out), h(q), h(k), h(v), kCache.map(h), vCache.map(h), rows, blocks, N, NH, NKV, HD, blockTokens, blocksPerChunk, R, R ? blocks.length / R : 0,
    );
  }

  attentionBackward(
    dq: Tensor, dk: Tensor, dv: Tensor, dout: Tensor, out: Tensor, lse: Tensor,
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null,
    B: number, T: number, NH: number, NKV: number, HD: number, segments: Tensor | null = null,
  ): void {
    checkArgs.attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, mask, B, T, NH, NKV, HD, segments);
    this.addon.attentionBackward(h(dq), h(dk), h(dv), h(dout), h(out), h(lse), h(q), h(k), h(v), hOrNull(mask), hOrNull(segments), B, T, NH, NKV, HD);
  }

  swigluForward(out: Tensor, gate: Tensor, up: Tensor, n: number): void {
    checkArgs.swigluForward(out, gate, up, n);
    this.addon.swigluForward(h(out), h(gate), h(up), n);
  }

  swigluBackward(dgate: Tensor, dup: Tensor, dout: Tensor, gate: Tensor, up: Tensor, n: number): void {
    checkArgs.swigluBackward(dgate, dup, dout, gate, up, n);
    this.addon.swigluBackward(h(dgate), h(dup), h(dout), h(gate), h(up), n);
  }

  crossEntropy(losses: Tensor, dlogits: Tensor | null, logits: Tensor, targets: Tensor, N: number, V: number, gradScale: number): void {
    checkArgs.crossEntropy(losses, dlogits, logits, targets, N, V, gradScale);
    this.addon.crossEntropy(h(losses), hOrNull(dlogits), h(logits), h(targets), N, V, gradScale);
  }

  argmaxRows(out: Tensor, x: Tensor, R: number, V: number): void {
    checkArgs.argmaxRows(out, x, R, V);
    this.addon.argmaxRows(h(out), h(x), R, V);
  }

  sumSquares(out: Tensor, t: Tensor): void {
    checkArgs.sumSquares(out, t);
    this.addon.sumSquares(h(out), h(t));
  }

  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void {
    checkArgs.adamw(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step);
    this.addon.adamw(h(param), h(grad), h(m), h(v), lr, beta1, beta2, eps, weightDecay, step);
  }
}

let loaded: CpuBackend | null = null;

/**
 * The loader select.ts (and the benchmarks) use: a CpuBackend, or why there is none. At the first load in a process
 * the GEMM kernels are chosen by measurement (cached per machine), unless ALPACA_CPU_GEMM chose them.
 */
export const cpuLoader = {
  name: 'cpu' as const,
  load(): CpuBackend | { unavailable: string } {
    if (loaded) return loaded;
    const addon = loadCpuAddon();
    if ('unavailable' in addon) return addon;
    const be = new CpuBackend(addon);
    if (process.env.ALPACA_CPU_GEMM) { // the addon applied it when it loaded
      be.gemmOrigin = `ALPACA_CPU_GEMM=${process.env.ALPACA_CPU_GEMM}`;
    } else if (addon.info().blasCore) {
      const chosen = applyMeasuredGemm(addon);
      be.gemmOrigin = chosen.source === 'cache' ? `measured faster here, cached in ${chosen.file}`
        : `measured faster here just now${chosen.written ? `, cached in ${chosen.file}` : ''}`;
    }
    return (loaded = be);
  },
  describe(): string {
    const be = cpuLoader.load();
    return 'unavailable' in be ? be.unavailable : be.describe();
  },
};
