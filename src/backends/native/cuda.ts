// The CUDA backend: every op enqueues kernels on the addon's one stream (native/cuda); a tensor's handle is
// a device address inside its arena's slabs. `cudaLoader` is what select.ts uses.
// Precision (how matmuls and attention round their f32 inputs; see native/cuda/matmul.cu):
//   'bf16' (default): half weights meet activations rounded to their own 16-bit type on tensor cores,
//     attention runs bf16 tensor cores, f32 x f32 products use TF32; accumulation is always float32.
//   'f32': IEEE float32 products everywhere (half weights widened first): tight parity with js.
// ALPACA_CUDA_PRECISION=f32|bf16 picks it for the loader. Every other op computes in float32 either way.

import type { Backend } from '../../engine/backend.ts';
import { BYTES_PER_ELEMENT, isQuantDType, type DType, type TensorDType } from '../../engine/dtype.ts';
import type { QuantizedWeight } from '../../engine/quantized.ts';
import { numel, shapeString, type Arena, type Tensor } from '../../engine/tensor.ts';
import { UserError } from '../../errors.ts';
import { DTYPE_CODE, loadCudaAddon, PRECISION_CODE, type CudaAddon, type CudaMemoryStats } from './cuda-addon.ts';

export type CudaPrecision = 'f32' | 'bf16';

interface CudaTensor extends Tensor {
  readonly handle: { readonly ptr: number; readonly owner: boolean };
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
  if (isQuantDType(t.dtype)) throw noQuantized(`a ${t.dtype} tensor ${shapeString(t.shape)}`);
  return t.dtype;
}

function check(t: Tensor, n: number, op: string, ok: (d: TensorDType) => boolean, want: string): number {
  dense(t);
  if (!ok(t.dtype)) throw new Error(`cuda backend: ${op} needs ${want}, got a ${t.dtype} tensor ${shapeString(t.shape)}`);
  if (t.size < n) throw new Error(`cuda backend: ${op} needs ${n} elements, got ${shapeString(t.shape)}`);
  return ptr(t);
}

/** The address of an f32 tensor holding at least n elements. */
const f32 = (t: Tensor, n: number, op: string) => check(t, n, op, (d) => d === 'f32', 'an f32 tensor');
/** The address of a float tensor of any stored dtype holding at least n elements. */
const flt = (t: Tensor, n: number, op: string) => check(t, n, op, (d) => d === 'f32' || d === 'bf16' || d === 'f16', 'a float tensor');
const i32 = (t: Tensor, n: number, op: string) => check(t, n, op, (d) => d === 'i32', 'an i32 tensor');
/** The address of a tensor of any dtype holding at least n elements. */
const any = (t: Tensor, n: number, op: string) => check(t, n, op, () => true, 'a tensor');

export class CudaBackend implements Backend {
  readonly name = 'cuda' as const;
  private readonly base: number;
  private readonly p: number;

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
    const t: CudaTensor = { shape: [...shape], dtype, arena, size, handle: { ptr: p, owner: true } };
    return t;
  }

  uploadQuantized(q: QuantizedWeight, _arena: Arena): Tensor {
    throw noQuantized(`a ${q.type} weight [${q.shape.join(', ')}]`);
  }

  upload(t: Tensor, data: Float32Array | Uint16Array | Int32Array): void {
    if (data.length !== t.size) throw new Error(`upload: ${data.length} values for a tensor of ${t.size} ${shapeString(t.shape)}`);
    if (data instanceof Float32Array && t.dtype === 'i32') throw new Error('upload: float values into an i32 tensor');
    if (data instanceof Uint16Array && t.dtype !== 'bf16' && t.dtype !== 'f16') throw new Error(`upload: 16-bit values into a ${t.dtype} tensor`);
    if (data instanceof Int32Array && t.dtype !== 'i32') throw new Error(`upload: int32 values into a ${t.dtype} tensor`);
    this.addon.upload(ptr(t), DTYPE_CODE[dense(t)], data);
  }

  async download(t: Tensor): Promise<Float32Array | Int32Array> {
    return this.addon.download(ptr(t), DTYPE_CODE[dense(t)], t.size);
  }

  view(t: Tensor, offset: number, shape: readonly number[]): Tensor {
    const size = numel(shape);
    if (offset < 0 || offset + size > t.size) throw new Error(`view of ${size} at ${offset} past the end of ${shapeString(t.shape)}`);
    const handle = { ptr: ptr(t) + offset * BYTES_PER_ELEMENT[dense(t)], owner: false };
    const v: CudaTensor = { shape: [...shape], dtype: t.dtype, arena: t.arena, size, handle };
    return v;
  }

  free(t: Tensor): void {
    if ((t as CudaTensor).handle.owner) this.addon.free(ptr(t));
  }

  freeArena(arena: Arena): void {
    this.addon.freeArena(this.base + ARENAS.indexOf(arena));
  }

  async sync(): Promise<void> {
    this.addon.sync();
  }

  fill(t: Tensor, value: number): void {
    this.addon.fill(ptr(t), DTYPE_CODE[dense(t)], t.size, value);
  }

  copy(dst: Tensor, src: Tensor): void {
    if (dst.size !== src.size) throw new Error(`copy: ${src.size} elements into ${dst.size}`);
    if ((dst.dtype === 'i32') !== (src.dtype === 'i32')) throw new Error(`copy: ${src.dtype} into ${dst.dtype}`);
    this.addon.copy(ptr(dst), DTYPE_CODE[dense(dst)], ptr(src), DTYPE_CODE[dense(src)], src.size);
  }

  add(out: Tensor, a: Tensor, b: Tensor): void {
    const n = out.size;
    this.addon.add(f32(out, n, 'add'), f32(a, n, 'add'), f32(b, n, 'add'), n);
  }

  axpy(dst: Tensor, src: Tensor, scale: number): void {
    this.addon.axpy(f32(dst, 0, 'axpy'), f32(src, dst.size, 'axpy'), scale, dst.size);
  }

  scale(t: Tensor, s: number): void {
    this.addon.scale(f32(t, 0, 'scale'), s, t.size);
  }

  copyTime(dst: Tensor, src: Tensor, B: number, W: number, Tdst: number, dstT0: number, Tsrc: number, srcT0: number, count: number): void {
    if (dst.dtype !== src.dtype) throw new Error(`copyTime: ${src.dtype} into ${dst.dtype}`);
    if (dstT0 + count > Tdst || srcT0 + count > Tsrc || dstT0 < 0 || srcT0 < 0) throw new Error('copyTime: time steps out of range');
    const d = any(dst, B * Tdst * W, 'copyTime'), s = any(src, B * Tsrc * W, 'copyTime');
    this.addon.copyTime(d, s, BYTES_PER_ELEMENT[dense(dst)], B, W, Tdst, dstT0, Tsrc, srcT0, count);
  }

  dropout(out: Tensor, inp: Tensor, p: number, seed: number): void {
    const n = out.size;
    this.addon.dropout(f32(out, n, 'dropout'), f32(inp, n, 'dropout'), n, p, seed >>> 0);
  }

  scaleColumns(out: Tensor, inp: Tensor, scale: Tensor, bias: Tensor | null, N: number, OC: number): void {
    const op = 'scaleColumns';
    const b = bias ? flt(bias, OC, op) : 0;
    this.addon.scaleColumns(f32(out, N * OC, op), f32(inp, N * OC, op), f32(scale, OC, op), b, bias ? DTYPE_CODE[dense(bias)] : 0, N, OC);
  }

  columnDot(out: Tensor, a: Tensor, b: Tensor, scale: Tensor, N: number, OC: number): void {
    const op = 'columnDot';
    this.addon.columnDot(f32(out, OC, op), f32(a, N * OC, op), f32(b, N * OC, op), f32(scale, OC, op), N, OC);
  }

  embeddingForward(out: Tensor, ids: Tensor, table: Tensor, N: number, C: number): void {
    const V = table.shape[0]!;
    const op = 'embeddingForward';
    this.addon.embeddingForward(f32(out, N * C, op), i32(ids, N, op), flt(table, V * C, op), DTYPE_CODE[dense(table)], V, N, C);
  }

  embeddingBackward(dtable: Tensor, dout: Tensor, ids: Tensor, N: number, C: number): void {
    const V = dtable.shape[0]!;
    const op = 'embeddingBackward';
    this.addon.embeddingBackward(f32(dtable, V * C, op), f32(dout, N * C, op), i32(ids, N, op), V, N, C);
  }

  matmulForward(out: Tensor, inp: Tensor, weight: Tensor, bias: Tensor | null, N: number, C: number, OC: number): void {
    const op = 'matmulForward';
    const b = bias ? flt(bias, OC, op) : 0;
    this.addon.matmulForward(
      f32(out, N * OC, op), f32(inp, N * C, op), flt(weight, OC * C, op), DTYPE_CODE[dense(weight)],
      b, bias ? DTYPE_CODE[dense(bias)] : 0, N, C, OC, this.p,
    );
  }

  matmulBackward(
    dinp: Tensor | null, dweight: Tensor | null, dbias: Tensor | null,
    dout: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, OC: number,
  ): void {
    const op = 'matmulBackward';
    this.addon.matmulBackward(
      dinp ? f32(dinp, N * C, op) : 0, dweight ? f32(dweight, OC * C, op) : 0, dbias ? f32(dbias, OC, op) : 0,
      f32(dout, N * OC, op), f32(inp, N * C, op), flt(weight, OC * C, op), DTYPE_CODE[dense(weight)], N, C, OC, this.p,
    );
  }

  rmsnormForward(out: Tensor, rstd: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, eps: number): void {
    const op = 'rmsnormForward';
    this.addon.rmsnormForward(f32(out, N * C, op), f32(rstd, N, op), f32(inp, N * C, op), flt(weight, C, op), DTYPE_CODE[dense(weight)], N, C, eps);
  }

  rmsnormBackward(dinp: Tensor, dweight: Tensor | null, dout: Tensor, inp: Tensor, weight: Tensor, rstd: Tensor, N: number, C: number): void {
    const op = 'rmsnormBackward';
    this.addon.rmsnormBackward(
      f32(dinp, N * C, op), dweight ? f32(dweight, C, op) : 0, f32(dout, N * C, op), f32(inp, N * C, op),
      flt(weight, C, op), DTYPE_CODE[dense(weight)], f32(rstd, N, op), N, C,
    );
  }

  rope(x: Tensor, cos: Tensor, sin: Tensor, B: number, T: number, H: number, HD: number, inverse: boolean): void {
    const op = 'rope';
    this.addon.rope(f32(x, B * T * H * HD, op), f32(cos, (T * HD) / 2, op), f32(sin, (T * HD) / 2, op), B, T, H, HD, inverse);
  }

  attentionForward(
    out: Tensor, lse: Tensor, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null,
    B: number, Tq: number, Tk: number, Tkv: number, NH: number, NKV: number, HD: number, segments: Tensor | null = null,
  ): void {
    const op = 'attentionForward';
    if (NH % NKV !== 0 || Tk > Tkv || Tq > Tk) throw new Error(`${op}: bad shape NH ${NH}, NKV ${NKV}, Tq ${Tq}, Tk ${Tk}, Tkv ${Tkv}`);
    if (mask && segments) throw new Error(`${op}: pass segments or a key mask, not both`);
    this.addon.attentionForward(
      f32(out, B * Tq * NH * HD, op), f32(lse, B * NH * Tq, op), f32(q, B * Tq * NH * HD, op), f32(k, B * Tkv * NKV * HD, op),
      f32(v, B * Tkv * NKV * HD, op), mask ? i32(mask, B * Tkv, op) : 0, segments ? i32(segments, B * Tkv, op) : 0, B, Tq, Tk, Tkv, NH, NKV, HD, this.p,
    );
  }

  attentionBackward(
    dq: Tensor, dk: Tensor, dv: Tensor, dout: Tensor, out: Tensor, lse: Tensor,
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null,
    B: number, T: number, NH: number, NKV: number, HD: number, segments: Tensor | null = null,
  ): void {
    const op = 'attentionBackward';
    if (NH % NKV !== 0) throw new Error(`${op}: ${NH} heads do not split into ${NKV} groups`);
    if (mask && segments) throw new Error(`${op}: pass segments or a key mask, not both`);
    const nq = B * T * NH * HD, nk = B * T * NKV * HD;
    this.addon.attentionBackward(
      f32(dq, nq, op), f32(dk, nk, op), f32(dv, nk, op), f32(dout, nq, op), f32(out, nq, op), f32(lse, B * NH * T, op),
      f32(q, nq, op), f32(k, nk, op), f32(v, nk, op), mask ? i32(mask, B * T, op) : 0, segments ? i32(segments, B * T, op) : 0, B, T, NH, NKV, HD, this.p,
    );
  }

  swigluForward(out: Tensor, gate: Tensor, up: Tensor, n: number): void {
    const op = 'swigluForward';
    this.addon.swigluForward(f32(out, n, op), f32(gate, n, op), f32(up, n, op), n);
  }

  swigluBackward(dgate: Tensor, dup: Tensor, dout: Tensor, gate: Tensor, up: Tensor, n: number): void {
    const op = 'swigluBackward';
    this.addon.swigluBackward(f32(dgate, n, op), f32(dup, n, op), f32(dout, n, op), f32(gate, n, op), f32(up, n, op), n);
  }

  crossEntropy(losses: Tensor, dlogits: Tensor | null, logits: Tensor, targets: Tensor, N: number, V: number, gradScale: number): void {
    const op = 'crossEntropy';
    this.addon.crossEntropy(
      f32(losses, N, op), dlogits ? f32(dlogits, N * V, op) : 0, f32(logits, N * V, op), i32(targets, N, op), N, V, gradScale,
    );
  }

  sumSquares(out: Tensor, t: Tensor): void {
    this.addon.sumSquares(f32(out, 1, 'sumSquares'), f32(t, 0, 'sumSquares'), t.size);
  }

  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void {
    const n = param.size, op = 'adamw';
    const stepSize = lr / (1 - beta1 ** step);
    const bc2Sqrt = Math.sqrt(1 - beta2 ** step);
    this.addon.adamw(f32(param, n, op), f32(grad, n, op), f32(m, n, op), f32(v, n, op), n, lr, beta1, beta2, eps, weightDecay, stepSize, bc2Sqrt);
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
