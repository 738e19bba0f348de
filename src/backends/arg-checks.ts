// The argument checks of every Backend op, in one place for all backends: the js reference and the cpu and
// cuda wrappers call `checkArgs.<op>(...)` with the op's own arguments before touching memory. It checks what
// backend.ts states: tensors made by a backend and not freed, dtypes, element counts, dimensions, and which
// ops take a quantized weight. A failure throws one Error naming the op and the argument, the same on every
// backend. Not checked here: data-dependent limits (token ids, labels), which the kernels check as they read.

import type { Backend } from '../engine/backend.ts';
import { isFrozenDType, isQuantDType, type DType, type FrozenDType } from '../engine/dtype.ts';
import { numel, shapeString, type Tensor } from '../engine/tensor.ts';
import { checkLive } from './tensor-ledger.ts';

/** Which stored dtypes an argument accepts: f32 only, i32 only, any float (f32, bf16, f16), or any. */
type Kind = 'f32' | 'i32' | 'float' | 'any';

const ACCEPTS: Readonly<Record<Kind, (d: DType) => boolean>> = {
  f32: (d) => d === 'f32',
  i32: (d) => d === 'i32',
  float: (d) => d !== 'i32',
  any: () => true,
};
const EXPECTED: Readonly<Record<Kind, string>> = { f32: 'f32', i32: 'i32', float: 'f32, bf16 or f16', any: 'a dense dtype' };

/** What a frozen weight is, in messages: "quantized (nf4)" or "packed bf16". */
function frozenKind(dtype: FrozenDType): string {
  return isQuantDType(dtype) ? `quantized (${dtype})` : 'packed bf16';
}

/** A live dense tensor of `kind` holding at least `need` elements. */
function tensor(op: string, name: string, t: Tensor, need: number, kind: Kind): void {
  checkLive(t, op, name);
  if (isFrozenDType(t.dtype)) {
    throw new Error(`${op}: ${name} is a ${frozenKind(t.dtype)} weight ${shapeString(t.shape)}; only matmulForward and matmulBackward's dinp read one`);
  }
  if (!ACCEPTS[kind](t.dtype)) throw new Error(`${op}: ${name} is ${t.dtype}, expected ${EXPECTED[kind]}`);
  if (t.size < need) throw new Error(`${op}: ${name} has ${t.size} elements, the op needs ${need}`);
}

function optional(op: string, name: string, t: Tensor | null | undefined, need: number, kind: Kind): void {
  if (t) tensor(op, name, t, need, kind);
}

/** A linear weight (OC, C): a float tensor of at least OC * C elements, or a frozen one of exactly that shape. */
function weight(op: string, name: string, t: Tensor, C: number, OC: number): void {
  if (!isFrozenDType(t.dtype)) return tensor(op, name, t, OC * C, 'float');
  checkLive(t, op, name);
  if (t.shape[0] !== OC || t.shape[1] !== C) throw new Error(`${op}: ${name} is a ${t.dtype} weight ${shapeString(t.shape)}, the op needs [${OC}, ${C}]`);
}

/** A dimension: a non-negative integer. */
function dim(op: string, name: string, v: number): void {
  if (!(Number.isInteger(v) && v >= 0)) throw new Error(`${op}: ${name} must be a non-negative integer, got ${v}`);
}

function attentionShape(op: string, NH: number, NKV: number, mask: Tensor | null, segments: Tensor | null | undefined): void {
  if (NKV === 0 || NH % NKV) throw new Error(`${op}: NH (${NH}) must be a multiple of NKV (${NKV})`);
  if (mask && segments) throw new Error(`${op}: pass segments or a key mask, not both`);
}

/** packWeight's argument: a live dense float weight, a whole (OC, C) tensor. */
export function checkPackWeight(w: Tensor): void {
  tensor('packWeight', 'w', w, 0, 'float');
  if (w.shape.length !== 2 || w.size !== numel(w.shape)) throw new Error(`packWeight: w ${shapeString(w.shape)} is not a whole (OC, C) weight`);
}

type Op = Exclude<keyof Backend, 'name' | 'alloc' | 'download' | 'view' | 'free' | 'freeArena' | 'uploadQuantized' | 'packWeight' | 'sync'>;

export const checkArgs: Pick<Backend, Op> = {
  upload(t, data) {
    tensor('upload', 't', t, 0, 'any');
    if (data.length !== t.size) throw new Error(`upload: ${data.length} values for a tensor of ${t.size} ${shapeString(t.shape)}`);
    if (data instanceof Float32Array && t.dtype === 'i32') throw new Error('upload: float values into an i32 tensor');
    if (data instanceof Uint16Array && t.dtype !== 'bf16' && t.dtype !== 'f16') throw new Error(`upload: 16-bit values into a ${t.dtype} tensor`);
    if (data instanceof Int32Array && t.dtype !== 'i32') throw new Error(`upload: int32 values into a ${t.dtype} tensor`);
  },
  fill(t) {
    tensor('fill', 't', t, 0, 'any');
  },
  copy(dst, src) {
    tensor('copy', 'dst', dst, 0, 'any');
    tensor('copy', 'src', src, 0, 'any');
    if (dst.size !== src.size) throw new Error(`copy: ${src.size} elements into ${dst.size}`);
    if ((dst.dtype === 'i32') !== (src.dtype === 'i32')) throw new Error(`copy: cannot convert between i32 and floats (${src.dtype} into ${dst.dtype})`);
  },
  add(out, a, b) {
    tensor('add', 'out', out, 0, 'float');
    tensor('add', 'a', a, out.size, 'float');
    tensor('add', 'b', b, out.size, 'float');
  },
  axpy(dst, src) {
    tensor('axpy', 'dst', dst, 0, 'float');
    tensor('axpy', 'src', src, dst.size, 'float');
  },
  scale(t) {
    tensor('scale', 't', t, 0, 'float');
  },
  copyTime(dst, src, B, W, Tdst, dstT0, Tsrc, srcT0, count) {
    const op = 'copyTime';
    dim(op, 'B', B);
    dim(op, 'W', W);
    dim(op, 'Tdst', Tdst);
    dim(op, 'dstT0', dstT0);
    dim(op, 'Tsrc', Tsrc);
    dim(op, 'srcT0', srcT0);
    dim(op, 'count', count);
    if (dstT0 + count > Tdst || srcT0 + count > Tsrc) throw new Error(`${op}: time range past the end`);
    tensor(op, 'dst', dst, B * Tdst * W, 'any');
    tensor(op, 'src', src, B * Tsrc * W, 'any');
    if (dst.dtype !== src.dtype) throw new Error(`${op}: needs matching dtypes, got ${dst.dtype} and ${src.dtype}`);
  },
  dropout(out, inp) {
    tensor('dropout', 'out', out, 0, 'float');
    tensor('dropout', 'inp', inp, out.size, 'float');
  },
  scaleColumns(out, inp, scale, bias, N, OC) {
    const op = 'scaleColumns';
    dim(op, 'N', N);
    dim(op, 'OC', OC);
    tensor(op, 'out', out, N * OC, 'float');
    tensor(op, 'inp', inp, N * OC, 'float');
    tensor(op, 'scale', scale, OC, 'f32');
    optional(op, 'bias', bias, OC, 'float');
  },
  columnDot(out, a, b, scale, N, OC) {
    const op = 'columnDot';
    dim(op, 'N', N);
    dim(op, 'OC', OC);
    tensor(op, 'out', out, OC, 'f32');
    tensor(op, 'a', a, N * OC, 'f32');
    tensor(op, 'b', b, N * OC, 'f32');
    tensor(op, 'scale', scale, OC, 'f32');
  },
  embeddingForward(out, ids, table, N, C) {
    const op = 'embeddingForward';
    dim(op, 'N', N);
    dim(op, 'C', C);
    tensor(op, 'out', out, N * C, 'float');
    tensor(op, 'ids', ids, N, 'i32');
    tensor(op, 'table', table, C, 'float');
  },
  embeddingBackward(dtable, dout, ids, N, C) {
    const op = 'embeddingBackward';
    dim(op, 'N', N);
    dim(op, 'C', C);
    tensor(op, 'dtable', dtable, C, 'f32');
    tensor(op, 'dout', dout, N * C, 'float');
    tensor(op, 'ids', ids, N, 'i32');
  },
  matmulForward(out, inp, w, bias, N, C, OC) {
    const op = 'matmulForward';
    dim(op, 'N', N);
    dim(op, 'C', C);
    dim(op, 'OC', OC);
    tensor(op, 'out', out, N * OC, 'float');
    tensor(op, 'inp', inp, N * C, 'float');
    weight(op, 'weight', w, C, OC);
    optional(op, 'bias', bias, OC, 'float');
  },
  matmulBackward(dinp, dweight, dbias, dout, inp, w, N, C, OC) {
    const op = 'matmulBackward';
    dim(op, 'N', N);
    dim(op, 'C', C);
    dim(op, 'OC', OC);
    optional(op, 'dinp', dinp, N * C, 'float');
    optional(op, 'dweight', dweight, OC * C, 'f32');
    optional(op, 'dbias', dbias, OC, 'f32');
    tensor(op, 'dout', dout, N * OC, 'float');
    tensor(op, 'inp', inp, dweight ? N * C : 0, dweight ? 'float' : 'any');
    if (dinp || dweight) weight(op, 'weight', w, C, OC);
    if (dweight && isFrozenDType(w.dtype)) {
      throw new Error(`${op}: the ${w.dtype} weight ${shapeString(w.shape)} is ${isQuantDType(w.dtype) ? 'quantized' : 'packed'} and frozen, so it has no dweight: ` +
        'full fine-tuning needs 16/32-bit base weights (load the base model without quantization, or train LoRA adapters on it)');
    }
  },
  rmsnormForward(out, rstd, inp, w, N, C) {
    const op = 'rmsnormForward';
    dim(op, 'N', N);
    dim(op, 'C', C);
    tensor(op, 'out', out, N * C, 'float');
    tensor(op, 'rstd', rstd, N, 'f32');
    tensor(op, 'inp', inp, N * C, 'float');
    tensor(op, 'weight', w, C, 'float');
  },
  rmsnormBackward(dinp, dweight, dout, inp, w, rstd, N, C) {
    const op = 'rmsnormBackward';
    dim(op, 'N', N);
    dim(op, 'C', C);
    tensor(op, 'dinp', dinp, N * C, 'float');
    optional(op, 'dweight', dweight, C, 'f32');
    tensor(op, 'dout', dout, N * C, 'float');
    tensor(op, 'inp', inp, N * C, 'float');
    tensor(op, 'weight', w, C, 'float');
    tensor(op, 'rstd', rstd, N, 'f32');
  },
  rope(x, cos, sin, B, T, H, HD) {
    const op = 'rope';
    dim(op, 'B', B);
    dim(op, 'T', T);
    dim(op, 'H', H);
    dim(op, 'HD', HD);
    if (HD % 2) throw new Error(`${op}: HD must be even, got ${HD}`);
    tensor(op, 'x', x, B * T * H * HD, 'float');
    tensor(op, 'cos', cos, (T * HD) / 2, 'f32');
    tensor(op, 'sin', sin, (T * HD) / 2, 'f32');
  },
  attentionForward(out, lse, q, k, v, mask, B, Tq, Tk, Tkv, NH, NKV, HD, segments) {
    const op = 'attentionForward';
    dim(op, 'B', B);
    dim(op, 'Tq', Tq);
    dim(op, 'Tk', Tk);
    dim(op, 'Tkv', Tkv);
    dim(op, 'NH', NH);
    dim(op, 'NKV', NKV);
    dim(op, 'HD', HD);
    if (Tq > Tk || Tk > Tkv) throw new Error(`${op}: needs Tq <= Tk <= Tkv, got ${Tq}, ${Tk}, ${Tkv}`);
    attentionShape(op, NH, NKV, mask, segments);
    tensor(op, 'out', out, B * Tq * NH * HD, 'float');
    tensor(op, 'lse', lse, B * NH * Tq, 'f32');
    tensor(op, 'q', q, B * Tq * NH * HD, 'float');
    tensor(op, 'k', k, B * Tkv * NKV * HD, 'float');
    tensor(op, 'v', v, B * Tkv * NKV * HD, 'float');
    optional(op, 'mask', mask, B * Tkv, 'i32');
    optional(op, 'segments', segments, B * Tkv, 'i32');
  },
  attentionPaged(out, q, k, v, kCache, vCache, rows, blocks, N, NH, NKV, HD, blockTokens, blocksPerChunk) {
    const op = 'attentionPaged';
    for (const [name, n] of Object.entries({ N, NH, NKV, HD, blockTokens, blocksPerChunk })) dim(op, name, n);
    attentionShape(op, NH, NKV, null, null);
    tensor(op, 'out', out, N * NH * HD, 'float');
    tensor(op, 'q', q, N * NH * HD, 'float');
    tensor(op, 'k', k, N * NKV * HD, 'float');
    tensor(op, 'v', v, N * NKV * HD, 'float');
    if (kCache.length !== vCache.length) throw new Error(`${op}: ${kCache.length} key chunks but ${vCache.length} value chunks`);
    const chunk = blocksPerChunk * blockTokens * NKV * HD;
    kCache.forEach((t, c) => tensor(op, `kCache[${c}]`, t, chunk, 'float'));
    vCache.forEach((t, c) => tensor(op, `vCache[${c}]`, t, chunk, 'float'));
    if ([...kCache, ...vCache].some((t) => t.dtype !== kCache[0]!.dtype)) throw new Error(`${op}: the cache chunks must share one dtype`);
    const R = rows.length / 3, maxBlocks = R > 0 ? blocks.length / R : 0;
    if (!Number.isInteger(R) || !Number.isInteger(maxBlocks)) throw new Error(`${op}: rows holds ${rows.length} values (3 per row) and blocks ${blocks.length}, not a multiple of the rows`);
    let tokens = 0;
    for (let r = 0; r < R; r++) {
      const n0 = rows[3 * r]!, Tq = rows[3 * r + 1]!, Tk = rows[3 * r + 2]!;
      if (n0 < 0 || Tq < 1 || Tq > Tk || n0 + Tq > N) throw new Error(`${op}: row ${r} (n0 ${n0}, Tq ${Tq}, Tk ${Tk}) does not fit N = ${N} with 1 <= Tq <= Tk`);
      if (Math.ceil(Tk / blockTokens) > maxBlocks) throw new Error(`${op}: row ${r} has ${Tk} time steps, more than its ${maxBlocks} blocks hold`);
      for (let i = 0; i < Math.ceil(Tk / blockTokens); i++) {
        const b = blocks[r * maxBlocks + i]!;
        if (!(b >= 0 && b < kCache.length * blocksPerChunk)) throw new Error(`${op}: row ${r}'s block ${i} is ${b}, outside the ${kCache.length * blocksPerChunk} blocks of the cache`);
      }
      tokens += Tq;
    }
    if (tokens > N) throw new Error(`${op}: the rows hold ${tokens} tokens, more than N = ${N}`);
  },
  attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, mask, B, T, NH, NKV, HD, segments) {
    const op = 'attentionBackward';
    dim(op, 'B', B);
    dim(op, 'T', T);
    dim(op, 'NH', NH);
    dim(op, 'NKV', NKV);
    dim(op, 'HD', HD);
    attentionShape(op, NH, NKV, mask, segments);
    const nq = B * T * NH * HD, nk = B * T * NKV * HD;
    tensor(op, 'dq', dq, nq, 'float');
    tensor(op, 'dk', dk, nk, 'float');
    tensor(op, 'dv', dv, nk, 'float');
    tensor(op, 'dout', dout, nq, 'float');
    tensor(op, 'out', out, nq, 'float');
    tensor(op, 'lse', lse, B * NH * T, 'f32');
    tensor(op, 'q', q, nq, 'float');
    tensor(op, 'k', k, nk, 'float');
    tensor(op, 'v', v, nk, 'float');
    optional(op, 'mask', mask, B * T, 'i32');
    optional(op, 'segments', segments, B * T, 'i32');
  },
  swigluForward(out, gate, up, n) {
    const op = 'swigluForward';
    dim(op, 'n', n);
    tensor(op, 'out', out, n, 'float');
    tensor(op, 'gate', gate, n, 'float');
    tensor(op, 'up', up, n, 'float');
  },
  swigluBackward(dgate, dup, dout, gate, up, n) {
    const op = 'swigluBackward';
    dim(op, 'n', n);
    tensor(op, 'dgate', dgate, n, 'float');
    tensor(op, 'dup', dup, n, 'float');
    tensor(op, 'dout', dout, n, 'float');
    tensor(op, 'gate', gate, n, 'float');
    tensor(op, 'up', up, n, 'float');
  },
  crossEntropy(losses, dlogits, logits, targets, N, V) {
    const op = 'crossEntropy';
    dim(op, 'N', N);
    dim(op, 'V', V);
    tensor(op, 'losses', losses, N, 'f32');
    optional(op, 'dlogits', dlogits, N * V, 'f32');
    tensor(op, 'logits', logits, N * V, 'f32');
    tensor(op, 'targets', targets, N, 'i32');
  },
  argmaxRows(out, x, R, V) {
    const op = 'argmaxRows';
    dim(op, 'R', R);
    dim(op, 'V', V);
    if (V < 1) throw new Error(`${op}: V must be at least 1`);
    tensor(op, 'out', out, R, 'i32');
    tensor(op, 'x', x, R * V, 'f32');
  },
  sumSquares(out, t) {
    tensor('sumSquares', 'out', out, 1, 'f32');
    tensor('sumSquares', 't', t, 0, 'f32');
  },
  adamw(param, grad, m, v) {
    const op = 'adamw';
    tensor(op, 'param', param, 0, 'f32');
    tensor(op, 'grad', grad, param.size, 'f32');
    tensor(op, 'm', m, param.size, 'f32');
    tensor(op, 'v', v, param.size, 'f32');
  },
};

/** download's check: a tensor made by a backend and not freed; `into` a Float32Array of its size, for a float tensor. */
export function checkDownload(t: Tensor, into?: Float32Array): void {
  checkLive(t, 'download', 't');
  if (!into) return;
  if (t.dtype === 'i32') throw new Error('download: into is for float tensors, not i32');
  if (!(into instanceof Float32Array) || into.length !== t.size) throw new Error(`download: into must be a Float32Array of ${t.size} values`);
}

/** view's check: a live dense tensor holding offset + numel(shape) elements. */
export function checkView(t: Tensor, offset: number, shape: readonly number[]): void {
  tensor('view', 't', t, 0, 'any');
  const n = numel(shape);
  if (!(Number.isInteger(offset) && offset >= 0) || offset + n > t.size) throw new Error(`view: ${n} elements at ${offset} past the end of ${shapeString(t.shape)}`);
}
