// The native CPU backend: every Backend op runs synchronously in the C++ addon (native/cpu), threaded and
// vectorized; tensors are addon-owned buffers behind opaque handles (a quantized weight's: all its parts).
// `cpuLoader` is what select.ts uses.

import type { Backend } from '../../engine/backend.ts';
import { isQuantDType, type DType } from '../../engine/dtype.ts';
import { checkQuantized, type QuantizedWeight } from '../../engine/quantized.ts';
import { numel, shapeString, type Arena, type Tensor } from '../../engine/tensor.ts';
import { DTYPE_CODE, loadCpuAddon, type CpuAddon, type Handle } from './cpu-addon.ts';
import { applyMeasuredGemm } from './cpu-gemm-timing.ts';

interface CpuTensor extends Tensor {
  readonly handle: Handle;
}

const h = (t: Tensor) => (t as CpuTensor).handle;
const hOrNull = (t: Tensor | null) => (t ? (t as CpuTensor).handle : null);

export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  private readonly arenas = new Map<Arena, Set<Tensor>>();

  /** How the GEMM kernels were chosen, when not by the addon's default (cpuLoader sets it). */
  gemmOrigin: string | null = null;

  constructor(readonly addon: CpuAddon) {}

  /** Threads, GEMM kernel ('openblas', 'own' or a table of both) and SIMD level, for logs and benchmarks. */
  describe(): string {
    const i = this.addon.info();
    const own = `own ${i.gemmIsa}`, blas = `OpenBLAS (${i.blasCore ?? '?'})`;
    const gemm = i.gemm === 'openblas' ? `${blas} GEMM` : i.gemm === 'own' ? `${own} GEMM`
      : `GEMM ${own} or ${blas} by weight dtype, large/skinny: ${i.gemmTable}`;
    return `${i.threads} threads, ${gemm}${this.gemmOrigin ? ` (${this.gemmOrigin})` : ''}, ${i.isa} kernels`;
  }

  alloc(shape: readonly number[], dtype: DType, arena: Arena): Tensor {
    const size = numel(shape);
    return this.track({ shape: [...shape], dtype, arena, size, handle: this.addon.alloc(size, DTYPE_CODE[dtype]) });
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
    return this.track({ shape: [OC, C], dtype: q.type, arena, size: OC * C, handle });
  }

  private track(t: CpuTensor): Tensor {
    let set = this.arenas.get(t.arena);
    if (!set) this.arenas.set(t.arena, (set = new Set()));
    set.add(t);
    return t;
  }

  upload(t: Tensor, data: Float32Array | Uint16Array | Int32Array): void {
    this.addon.upload(h(t), data);
  }

  async download(t: Tensor): Promise<Float32Array | Int32Array> {
    return this.addon.download(h(t));
  }

  view(t: Tensor, offset: number, shape: readonly number[]): Tensor {
    if (isQuantDType(t.dtype)) throw new Error(`cpu backend: view: the ${t.dtype} tensor ${shapeString(t.shape)} is a quantized weight, which has no views`);
    const size = numel(shape);
    if (offset < 0 || offset + size > t.size) throw new Error(`view of ${size} at ${offset} past the end of ${shapeString(t.shape)}`);
    const v: CpuTensor = { shape: [...shape], dtype: t.dtype, arena: t.arena, size, handle: this.addon.view(h(t), offset, size) };
    return v;
  }

  free(t: Tensor): void {
    if (this.arenas.get(t.arena)?.delete(t)) this.addon.free(h(t));
  }

  freeArena(arena: Arena): void {
    for (const t of this.arenas.get(arena) ?? []) this.addon.free(h(t));
    this.arenas.delete(arena);
  }

  async sync(): Promise<void> {}

  fill(t: Tensor, value: number): void {
    this.addon.fill(h(t), value);
  }

  copy(dst: Tensor, src: Tensor): void {
    this.addon.copy(h(dst), h(src));
  }

  add(out: Tensor, a: Tensor, b: Tensor): void {
    this.addon.add(h(out), h(a), h(b));
  }

  axpy(dst: Tensor, src: Tensor, scale: number): void {
    this.addon.axpy(h(dst), h(src), scale);
  }

  scale(t: Tensor, s: number): void {
    this.addon.scale(h(t), s);
  }

  copyTime(dst: Tensor, src: Tensor, B: number, W: number, Tdst: number, dstT0: number, Tsrc: number, srcT0: number, count: number): void {
    this.addon.copyTime(h(dst), h(src), B, W, Tdst, dstT0, Tsrc, srcT0, count);
  }

  dropout(out: Tensor, inp: Tensor, p: number, seed: number): void {
    this.addon.dropout(h(out), h(inp), p, seed);
  }

  scaleColumns(out: Tensor, inp: Tensor, scale: Tensor, bias: Tensor | null, N: number, OC: number): void {
    this.addon.scaleColumns(h(out), h(inp), h(scale), hOrNull(bias), N, OC);
  }

  columnDot(out: Tensor, a: Tensor, b: Tensor, scale: Tensor, N: number, OC: number): void {
    this.addon.columnDot(h(out), h(a), h(b), h(scale), N, OC);
  }

  embeddingForward(out: Tensor, ids: Tensor, table: Tensor, N: number, C: number): void {
    this.addon.embeddingForward(h(out), h(ids), h(table), N, C);
  }

  embeddingBackward(dtable: Tensor, dout: Tensor, ids: Tensor, N: number, C: number): void {
    this.addon.embeddingBackward(h(dtable), h(dout), h(ids), N, C);
  }

  matmulForward(out: Tensor, inp: Tensor, weight: Tensor, bias: Tensor | null, N: number, C: number, OC: number): void {
    this.addon.matmulForward(h(out), h(inp), h(weight), hOrNull(bias), N, C, OC);
  }

  matmulBackward(
    dinp: Tensor | null, dweight: Tensor | null, dbias: Tensor | null,
    dout: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, OC: number,
  ): void {
    this.addon.matmulBackward(hOrNull(dinp), hOrNull(dweight), hOrNull(dbias), h(dout), h(inp), h(weight), N, C, OC);
  }

  rmsnormForward(out: Tensor, rstd: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, eps: number): void {
    this.addon.rmsnormForward(h(out), h(rstd), h(inp), h(weight), N, C, eps);
  }

  rmsnormBackward(dinp: Tensor, dweight: Tensor | null, dout: Tensor, inp: Tensor, weight: Tensor, rstd: Tensor, N: number, C: number): void {
    this.addon.rmsnormBackward(h(dinp), hOrNull(dweight), h(dout), h(inp), h(weight), h(rstd), N, C);
  }

  rope(x: Tensor, cos: Tensor, sin: Tensor, B: number, T: number, H: number, HD: number, inverse: boolean): void {
    this.addon.rope(h(x), h(cos), h(sin), B, T, H, HD, inverse);
  }

  attentionForward(
    out: Tensor, lse: Tensor, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null,
    B: number, Tq: number, Tk: number, Tkv: number, NH: number, NKV: number, HD: number, segments: Tensor | null = null,
  ): void {
    this.addon.attentionForward(h(out), h(lse), h(q), h(k), h(v), hOrNull(mask), hOrNull(segments), B, Tq, Tk, Tkv, NH, NKV, HD);
  }

  attentionBackward(
    dq: Tensor, dk: Tensor, dv: Tensor, dout: Tensor, out: Tensor, lse: Tensor,
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null,
    B: number, T: number, NH: number, NKV: number, HD: number, segments: Tensor | null = null,
  ): void {
    this.addon.attentionBackward(h(dq), h(dk), h(dv), h(dout), h(out), h(lse), h(q), h(k), h(v), hOrNull(mask), hOrNull(segments), B, T, NH, NKV, HD);
  }

  swigluForward(out: Tensor, gate: Tensor, up: Tensor, n: number): void {
    this.addon.swigluForward(h(out), h(gate), h(up), n);
  }

  swigluBackward(dgate: Tensor, dup: Tensor, dout: Tensor, gate: Tensor, up: Tensor, n: number): void {
    this.addon.swigluBackward(h(dgate), h(dup), h(dout), h(gate), h(up), n);
  }

  crossEntropy(losses: Tensor, dlogits: Tensor | null, logits: Tensor, targets: Tensor, N: number, V: number, gradScale: number): void {
    this.addon.crossEntropy(h(losses), hOrNull(dlogits), h(logits), h(targets), N, V, gradScale);
  }

  sumSquares(out: Tensor, t: Tensor): void {
    this.addon.sumSquares(h(out), h(t));
  }

  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void {
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
