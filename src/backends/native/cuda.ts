// The CUDA backend: every op enqueues kernels on the addon's one stream (native/cuda); a tensor's handle is
// a device address inside its arena's slabs. Arguments are checked first (../arg-checks.ts); this wrapper adds
// only what this backend lacks (16-bit activations, quantized weights). `cudaLoader` is what select.ts uses.
// Precision (how matmuls and attention round their f32 inputs; see native/cuda/matmul.cu):
//   'bf16' (default): half weights meet activations rounded to their own 16-bit type on tensor cores,
//     attention runs bf16 tensor cores, f32 x f32 products use TF32; accumulation is always float32.
//   'f32': IEEE float32 products everywhere (half weights widened first): tight parity with js.
// ALPACA_CUDA_PRECISION=f32|bf16 picks it for the loader. Every other op computes in float32 either way.

import { argmax } from '../../engine/argmax.ts';
import type { Backend, DeviceCollectives } from '../../engine/backend.ts';
import { BYTES_PER_ELEMENT, isFrozenDType, type DType } from '../../engine/dtype.ts';
import type { QuantizedWeight } from '../../engine/quantized.ts';
import { numel, shapeString, type Arena, type Tensor } from '../../engine/tensor.ts';
import { UserError } from '../../errors.ts';
import { checkArgs, checkDownload, checkPackWeight, checkView } from '../arg-checks.ts';
import { attentionPagedByParts } from '../paged-attention-by-parts.ts';
import { isLive, TensorLedger } from '../tensor-ledger.ts';
import { DTYPE_CODE, loadCudaAddon, PRECISION_CODE, type CudaAddon, type CudaMemoryStats } from './cuda-addon.ts';

export type CudaPrecision = 'f32' | 'bf16';

interface CudaTensor extends Tensor {
  readonly handle: { readonly ptr: number };
}

const ARENAS: readonly Arena[] = ['weights', 'adapters', 'grads', 'optim', 'activations', 'scratch'];
let instances = 0;

// A backend that is garbage collected returns its arenas' device memory.
const release = new FinalizationRegistry<{ addon: CudaAddon; base: number }>(({ addon, base }) => {
  for (let i = 0; i < ARENAS.length; i++) addon.freeArena(base + i);
});

const ptr = (t: Tensor | null): number => (t ? (t as CudaTensor).handle.ptr : 0);

/** Why this backend holds no quantized weight (none is ever made here; one from another backend is refused). */
function noQuantized(what: string): UserError {
  return new UserError(`the cuda backend has no kernels for bitsandbytes-quantized weights (${what}) yet: ` +
    'run with --backend cpu, which computes with NF4/FP4 and LLM.int8 weights as stored, or load the base model unquantized');
}

/** A tensor's dense dtype; a quantized one is refused. */
function dense(t: Tensor): DType {
  if (isFrozenDType(t.dtype)) throw noQuantized(`a ${t.dtype} tensor ${shapeString(t.shape)}`);
  return t.dtype;
}

/** The address of a tensor whose checks (../arg-checks.ts) passed, held in f32: this backend has no 16-bit activations. */
function f32(t: Tensor, op: string): number {
  if (t.dtype !== 'f32') throw new Error(`${op}: a ${t.dtype} tensor ${shapeString(t.shape)}: the cuda backend computes on f32 activations only (16-bit ones: --backend cpu)`);
  return ptr(t);
}

export class CudaBackend implements Backend {
  readonly name = 'cuda' as const;
  private readonly base: number;
  private readonly p: number;
  private readonly ledger = new TensorLedger();
  private readonly pagedScratch = new Map<string, Tensor>(); // attentionPaged's gather buffers
  /** NCCL, loaded only when a multi-rank run asks for it. */
  readonly collectives: DeviceCollectives = {
    available: () => this.addon.ncclLoad(),
    uniqueId: () => this.addon.ncclUniqueId(),
    init: (id, size, rank) => this.addon.ncclInit(id, size, rank),
    allReduceSum: (t) => this.addon.ncclAllReduceSum(f32(t, 'allReduceSum'), t.size),
  };

  constructor(readonly addon: CudaAddon, readonly precision: CudaPrecision = 'bf16') {
    this.base = ++instances * ARENAS.length;
    this.p = PRECISION_CODE[precision];
    release.register(this, { addon, base: this.base });
  }

  describe(): string {
    return `${this.addon.deviceName()}, ${this.precision} precision`;
  }

  /** Device memory this addon holds, for benchmarks. */
  memory(): CudaMemoryStats {
    return this.addon.memoryStats();
  }

  resetPeakMemory(): void {
    this.addon.resetPeak();
  }

  alloc(shape: readonly number[], dtype: DType, arena: Arena): Tensor {
    const size = numel(shape);
    const p = this.addon.alloc(this.base + ARENAS.indexOf(arena), size * BYTES_PER_ELEMENT[dtype]);
    const t: CudaTensor = { shape: [...shape], dtype, arena, size, handle: { ptr: p } };
    return this.ledger.track(t);
  }

  uploadQuantized(q: QuantizedWeight, _arena: Arena): Tensor {
    throw noQuantized(`a ${q.type} weight [${q.shape.join(', ')}]`);
  }

  /** cuBLASLt reads the row layout as it is. */
  packWeight(w: Tensor): Tensor | null {
    checkPackWeight(w);
    return null;
  }

  upload(t: Tensor, data: Float32Array | Uint16Array | Int32Array): void {
    checkArgs.upload(t, data);
    this.addon.upload(ptr(t), DTYPE_CODE[dense(t)], data);
  }

  async download(t: Tensor, into?: Float32Array): Promise<Float32Array | Int32Array> {
    checkDownload(t, into);
    const values = this.addon.download(ptr(t), DTYPE_CODE[dense(t)], t.size);
    if (!into) return values;
    into.set(values);
    return into;
  }

  view(t: Tensor, offset: number, shape: readonly number[]): Tensor {
    checkView(t, offset, shape);
    const handle = { ptr: ptr(t) + offset * BYTES_PER_ELEMENT[dense(t)] };
    const v: CudaTensor = { shape: [...shape], dtype: t.dtype, arena: t.arena, size: numel(shape), handle };
    return this.ledger.trackView(t, v);
  }

  free(t: Tensor): void {
    if (this.ledger.free(t)) this.addon.free(ptr(t));
  }

  freeArena(arena: Arena): void {
    this.ledger.freeArena(arena);
    this.addon.freeArena(this.base + ARENAS.indexOf(arena));
  }

  async sync(): Promise<void> {
    this.addon.sync();
  }

  fill(t: Tensor, value: number): void {
    checkArgs.fill(t, value);
    this.addon.fill(ptr(t), DTYPE_CODE[dense(t)], t.size, value);
  }

  copy(dst: Tensor, src: Tensor): void {
    checkArgs.copy(dst, src);
    this.addon.copy(ptr(dst), DTYPE_CODE[dense(dst)], ptr(src), DTYPE_CODE[dense(src)], src.size);
  }

  add(out: Tensor, a: Tensor, b: Tensor): void {
    checkArgs.add(out, a, b);
    const n = out.size;
    this.addon.add(f32(out, 'add'), f32(a, 'add'), f32(b, 'add'), n);
  }

  axpy(dst: Tensor, src: Tensor, scale: number): void {
    checkArgs.axpy(dst, src, scale);
    this.addon.axpy(f32(dst, 'axpy'), f32(src, 'axpy'), scale, dst.size);
  }

  scale(t: Tensor, s: number): void {
    checkArgs.scale(t, s);
    this.addon.scale(f32(t, 'scale'), s, t.size);
  }

  copyTime(dst: Tensor, src: Tensor, B: number, W: number, Tdst: number, dstT0: number, Tsrc: number, srcT0: number, count: number): void {
    checkArgs.copyTime(dst, src, B, W, Tdst, dstT0, Tsrc, srcT0, count);
    const d = ptr(dst), s = ptr(src);
    this.addon.copyTime(d, s, BYTES_PER_ELEMENT[dense(dst)], B, W, Tdst, dstT0, Tsrc, srcT0, count);
  }

  dropout(out: Tensor, inp: Tensor, p: number, seed: number): void {
    checkArgs.dropout(out, inp, p, seed);
    const n = out.size;
    this.addon.dropout(f32(out, 'dropout'), f32(inp, 'dropout'), n, p, seed >>> 0);
  }

  scaleColumns(out: Tensor, inp: Tensor, scale: Tensor, bias: Tensor | null, N: number, OC: number): void {
    checkArgs.scaleColumns(out, inp, scale, bias, N, OC);
    const op = 'scaleColumns';
    this.addon.scaleColumns(f32(out, op), f32(inp, op), f32(scale, op), ptr(bias), bias ? DTYPE_CODE[dense(bias)] : 0, N, OC);
  }

  columnDot(out: Tensor, a: Tensor, b: Tensor, scale: Tensor, N: number, OC: number): void {
    checkArgs.columnDot(out, a, b, scale, N, OC);
    const op = 'columnDot';
    this.addon.columnDot(f32(out, op), f32(a, op), f32(b, op), f32(scale, op), N, OC);
  }

  embeddingForward(out: Tensor, ids: Tensor, table: Tensor, N: number, C: number): void {
    checkArgs.embeddingForward(out, ids, table, N, C);
    const V = table.shape[0]!;
    const op = 'embeddingForward';
    this.addon.embeddingForward(f32(out, op), ptr(ids), ptr(table), DTYPE_CODE[dense(table)], V, N, C);
  }

  embeddingBackward(dtable: Tensor, dout: Tensor, ids: Tensor, N: number, C: number): void {
    checkArgs.embeddingBackward(dtable, dout, ids, N, C);
    const V = dtable.shape[0]!;
    const op = 'embeddingBackward';
    this.addon.embeddingBackward(f32(dtable, op), f32(dout, op), ptr(ids), V, N, C);
  }

  matmulForward(out: Tensor, inp: Tensor, weight: Tensor, bias: Tensor | null, N: number, C: number, OC: number): void {
    checkArgs.matmulForward(out, inp, weight, bias, N, C, OC);
    const op = 'matmulForward';
    const b = bias ? ptr(bias) : 0;
    this.addon.matmulForward(
      f32(out, op), f32(inp, op), ptr(weight), DTYPE_CODE[dense(weight)],
      b, bias ? DTYPE_CODE[dense(bias)] : 0, N, C, OC, this.p,
    );
  }

  matmulBackward(
    dinp: Tensor | null, dweight: Tensor | null, dbias: Tensor | null,
    dout: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, OC: number,
  ): void {
    checkArgs.matmulBackward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    const op = 'matmulBackward';
    this.addon.matmulBackward(
      dinp ? f32(dinp, op) : 0, dweight ? f32(dweight, op) : 0, dbias ? f32(dbias, op) : 0,
      f32(dout, op), f32(inp, op), ptr(weight), DTYPE_CODE[dense(weight)], N, C, OC, this.p,
    );
  }

  rmsnormForward(out: Tensor, rstd: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, eps: number): void {
    checkArgs.rmsnormForward(out, rstd, inp, weight, N, C, eps);
    const op = 'rmsnormForward';
    this.addon.rmsnormForward(f32(out, op), f32(rstd, op), f32(inp, op), ptr(weight), DTYPE_CODE[dense(weight)], N, C, eps);
  }

  rmsnormBackward(dinp: Tensor, dweight: Tensor | null, dout: Tensor, inp: Tensor, weight: Tensor, rstd: Tensor, N: number, C: number): void {
    checkArgs.rmsnormBackward(dinp, dweight, dout, inp, weight, rstd, N, C);
    const op = 'rmsnormBackward';
    this.addon.rmsnormBackward(
      f32(dinp, op), dweight ? f32(dweight, op) : 0, f32(dout, op), f32(inp, op),
      ptr(weight), DTYPE_CODE[dense(weight)], f32(rstd, op), N, C,
    );
  }

  rope(x: Tensor, cos: Tensor, sin: Tensor, B: number, T: number, H: number, HD: number, inverse: boolean): void {
    checkArgs.rope(x, cos, sin, B, T, H, HD, inverse);
    const op = 'rope';
    this.addon.rope(f32(x, op), f32(cos, op), f32(sin, op), B, T, H, HD, inverse);
  }

  attentionForward(
    out: Tensor, lse: Tensor, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null,
    B: number, Tq: number, Tk: number, Tkv: number, NH: number, NKV: number, HD: number, segments: Tensor | null = null,
  ): void {
    checkArgs.attentionForward(out, lse, q, k, v, mask, B, Tq, Tk, Tkv, NH, NKV, HD, segments);
    const op = 'attentionForward';
    this.addon.attentionForward(
      f32(out, op), f32(lse, op), f32(q, op), f32(k, op),
      f32(v, op), mask ? ptr(mask) : 0, segments ? ptr(segments) : 0, B, Tq, Tk, Tkv, NH, NKV, HD, this.p,
    );
  }

  /** attentionPaged from copies and attentionForward (no paged kernel on cuda yet). */
  attentionPaged(
    out: Tensor, q: Tensor, k: Tensor, v: Tensor, kCache: readonly Tensor[], vCache: readonly Tensor[],
    rows: Int32Array, blocks: Int32Array, N: number, NH: number, NKV: number, HD: number, blockTokens: number, blocksPerChunk: number,
  ): void {
    checkArgs.attentionPaged(out, q, k, v, kCache, vCache, rows, blocks, N, NH, NKV, HD, blockTokens, blocksPerChunk);
    const scratch = (name: string, n: number): Tensor => {
      let t = this.pagedScratch.get(name);
      if (t && isLive(t) && t.size >= n) return t;
      if (t && isLive(t)) this.free(t);
      this.pagedScratch.set(name, (t = this.alloc([n], 'f32', 'scratch')));
      return t;
    };
    attentionPagedByParts(this, scratch, out, q, k, v, kCache, vCache, rows, blocks, N, NH, NKV, HD, blockTokens, blocksPerChunk);
  }

  attentionBackward(
    dq: Tensor, dk: Tensor, dv: Tensor, dout: Tensor, out: Tensor, lse: Tensor,
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null,
    B: number, T: number, NH: number, NKV: number, HD: number, segments: Tensor | null = null,
  ): void {
    checkArgs.attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, mask, B, T, NH, NKV, HD, segments);
    const op = 'attentionBackward';
    this.addon.attentionBackward(
      f32(dq, op), f32(dk, op), f32(dv, op), f32(dout, op), f32(out, op), f32(lse, op),
      f32(q, op), f32(k, op), f32(v, op), mask ? ptr(mask) : 0, segments ? ptr(segments) : 0, B, T, NH, NKV, HD, this.p,
    );
  }

  swigluForward(out: Tensor, gate: Tensor, up: Tensor, n: number): void {
    checkArgs.swigluForward(out, gate, up, n);
    const op = 'swigluForward';
    this.addon.swigluForward(f32(out, op), f32(gate, op), f32(up, op), n);
  }

  swigluBackward(dgate: Tensor, dup: Tensor, dout: Tensor, gate: Tensor, up: Tensor, n: number): void {
    checkArgs.swigluBackward(dgate, dup, dout, gate, up, n);
    const op = 'swigluBackward';
    this.addon.swigluBackward(f32(dgate, op), f32(dup, op), f32(dout, op), f32(gate, op), f32(up, op), n);
  }

  crossEntropy(losses: Tensor, dlogits: Tensor | null, logits: Tensor, targets: Tensor, N: number, V: number, gradScale: number): void {
    checkArgs.crossEntropy(losses, dlogits, logits, targets, N, V, gradScale);
    const op = 'crossEntropy';
    this.addon.crossEntropy(
      f32(losses, op), dlogits ? f32(dlogits, op) : 0, f32(logits, op), ptr(targets), N, V, gradScale,
    );
  }

  /** On the host (no device kernel yet): the logits come over as before, the ids go back. */
  argmaxRows(out: Tensor, x: Tensor, R: number, V: number): void {
    checkArgs.argmaxRows(out, x, R, V);
    const values = this.addon.download(ptr(x), DTYPE_CODE.f32, R * V) as Float32Array;
    this.addon.upload(ptr(out), DTYPE_CODE.i32, Int32Array.from({ length: R }, (_, r) => argmax(values, r * V, V)));
  }

  sumSquares(out: Tensor, t: Tensor): void {
    checkArgs.sumSquares(out, t);
    this.addon.sumSquares(f32(out, 'sumSquares'), f32(t, 'sumSquares'), t.size);
  }

  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void {
    checkArgs.adamw(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step);
    const n = param.size, op = 'adamw';
    const stepSize = lr / (1 - beta1 ** step);
    const bc2Sqrt = Math.sqrt(1 - beta2 ** step);
    this.addon.adamw(f32(param, op), f32(grad, op), f32(m, op), f32(v, op), n, lr, beta1, beta2, eps, weightDecay, stepSize, bc2Sqrt);
  }
}

/** ALPACA_CUDA_PRECISION, or bf16. */
export function precisionFromEnv(): CudaPrecision {
  const value = process.env.ALPACA_CUDA_PRECISION ?? 'bf16';
  if (value !== 'f32' && value !== 'bf16') throw new UserError(`ALPACA_CUDA_PRECISION=${value} is not one of f32, bf16`);
  return value;
}

/** A CUDA backend, or why there is none on this machine. */
export function createCudaBackend(precision: CudaPrecision = precisionFromEnv()): CudaBackend | { unavailable: string } {
  const addon = loadCudaAddon();
  return 'unavailable' in addon ? addon : new CudaBackend(addon, precision);
}

let loaded: CudaBackend | null = null;

export const cudaLoader = {
  name: 'cuda' as const,
  load(): Backend | { unavailable: string } {
    const be = createCudaBackend();
    if (!('unavailable' in be)) loaded = be;
    return be;
  },
  describe(): string {
    return loaded?.describe() ?? '';
  },
};
