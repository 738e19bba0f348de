// The compute interface every backend (js, cpu, cuda) implements. Model code calls only these.
//
// Conventions, stated once:
// - Ops are destination-passing and allocate nothing. Op calls only enqueue work; `download()` and `sync()`
//   are the only calls that wait.
// - Activation gradients overwrite their destination (`=`); parameter gradients accumulate (`+=`).
// - Float tensors may be stored as f32, bf16 or f16; compute is float32. Integer tensors (token ids,
//   targets, masks) are i32. Optimizer state, adapters and gradients are f32.
// - Activations may be 16-bit: kernels read bf16/f16 widened to float32 and round each result once to its
//   destination's dtype (to nearest even). Each such argument has its own dtype. They are: fill/copy/copyTime's
//   tensors; add's out, a, b; axpy's dst, src; scale's t; dropout's out, inp; scaleColumns' out, inp, bias; embeddingForward's out;
//   embeddingBackward's dout; matmulForward's out, inp; matmulBackward's dinp, dout, inp; rmsnorm's out, inp,
//   dinp, dout; rope's x; attention's out, q, k, v, dout, dq, dk, dv (attentionPaged's too, and its caches); swiglu's out, gate, up, dout, dgate, dup.
//   Everything else is f32: what accumulates (dweight, dbias, dtable, rmsnorm's dweight, sumSquares' out),
//   lse, rstd, cos, sin, crossEntropy's losses, logits and dlogits, and adamw's tensors. Weights as stated below.
// - Dimension letters: B batch, T time, C channels in, OC channels out, N rows (usually B*T),
//   NH query heads, NKV key/value heads, HD head dim, V vocab.
// - Linear weights use nn.Linear's layout: (OC, C), so out = inp @ weight^T + bias.
// - A frozen linear weight may be packed for inference (dtype bf16-packed, made by packWeight: the same values in a
//   layout the backend's products read faster) or quantized (dtype nf4/fp4/int8, made by uploadQuantized): matmulForward and
//   matmulBackward's dinp read it as stored, dequantizing block by block inside the kernel; no other op takes one.
// - Compute dtype (setComputeDtype, js and cpu only): 'bf16' makes a bf16 weight's products, matmulForward's out
//   and matmulBackward's dinp, take their input (inp, dout) rounded to bf16 (nearest even) and sum in float32 (PyTorch
//   CPU autocast); dweight, dbias and every other op are unchanged. The default 'f32' computes as stated above.

import type { DType } from './dtype.ts';
import type { QuantizedWeight } from './quantized.ts';
import type { Arena, Tensor } from './tensor.ts';

/** What a bf16 weight's products compute in (--compute_dtype). */
export type ComputeDType = 'f32' | 'bf16';

/** Label value that is not trained on (PyTorch's CrossEntropyLoss default). */
export const IGNORE_INDEX = -100;

/**
 * Sums over the ranks of a data-parallel job done on device memory (cuda: NCCL). Only the primitives: the
 * rendezvous that makes and shares the id lives with the World (src/distributed/device-reduce.ts).
 */
export interface DeviceCollectives {
  /** '' when the collective library can be loaded in this process, else why not (one line). */
  available(): string;
  /** A fresh group id (opaque bytes) for init; one rank makes it and every rank passes the same bytes. */
  uniqueId(): Uint8Array;
  /** Joins the group of `size` ranks made from `id` as `rank`; collective, once per process. */
  init(id: Uint8Array, size: number, rank: number): void;
  /** In place on an f32 tensor: it becomes its sum over the ranks (enqueued like any op). */
  allReduceSum(t: Tensor): void;
}

export interface Backend {
  readonly name: 'js' | 'cpu' | 'cuda';
  /** Present where the backend can all-reduce its own memory across processes (cuda); absent otherwise. */
  readonly collectives?: DeviceCollectives;

  // ---- memory ----
  alloc(shape: readonly number[], dtype: DType, arena: Arena): Tensor;
  /** Copy host data in. Float32Array is converted to the tensor's dtype; Uint16Array is raw bf16/f16 bits. */
  upload(t: Tensor, data: Float32Array | Uint16Array | Int32Array): void;
  /**
   * Copy out as float32 (float tensors) or int32 (i32 tensors). Waits for queued work. `into` (a float tensor's
   * t.size values) receives them instead of a new array and is returned: a caller that downloads every step reuses
   * one array rather than allocating fresh pages each time.
   */
  download(t: Tensor, into?: Float32Array): Promise<Float32Array | Int32Array>;
  /** A tensor aliasing t's memory from element `offset` on (no copy, no allocation). */
  view(t: Tensor, offset: number, shape: readonly number[]): Tensor;
  free(t: Tensor): void;
  freeArena(arena: Arena): void;
  /**
   * A frozen linear weight (OC, C) kept quantized (engine/quantized.ts): a tensor of dtype q.type. `download`
   * gives its dequantized float32 values; `free` releases all its parts; upload, view and copy refuse it.
   */
  uploadQuantized(q: QuantizedWeight, arena: Arena): Tensor;
  /**
   * A frozen copy (dtype bf16-packed, same shape and arena) of a bf16 linear weight (OC, C) in the layout this
   * backend's inference products read fastest, with the same results up to summation order; null where it has
   * none (js, cuda, a CPU without AVX512_BF16). `download` gives its values; upload, view and copy refuse it.
   */
  packWeight(w: Tensor): Tensor | null;
  sync(): Promise<void>;

  // ---- elementwise ----
  /** t[0..n) = value */
  fill(t: Tensor, value: number): void;
  /** dst[0..n) = src[0..n) (dtype conversion allowed) */
  copy(dst: Tensor, src: Tensor): void;
  /** out = a + b, n elements (out may alias a) */
  add(out: Tensor, a: Tensor, b: Tensor): void;
  /** dst += scale * src */
  axpy(dst: Tensor, src: Tensor, scale: number): void;
  /** t *= scale */
  scale(t: Tensor, s: number): void;
  /**
   * Copy `count` time steps per batch row: dst[b, dstT0 + t, :] = src[b, srcT0 + t, :] for t < count,
   * where dst is (B, Tdst, W) and src is (B, Tsrc, W). Used for KV caches and picking last positions.
   */
  copyTime(dst: Tensor, src: Tensor, B: number, W: number, Tdst: number, dstT0: number, Tsrc: number, srcT0: number, count: number): void;
  /**
   * Inverted dropout: out = inp * keep / (1 - p), keep[i] = dropoutKeep(seed, i, p) (engine/random.ts),
   * so the backward is the same call on the gradient with the same seed. out may alias inp.
   */
  dropout(out: Tensor, inp: Tensor, p: number, seed: number): void;
  /**
   * out (N, OC) = inp (N, OC) * scale (OC) + bias (OC; null = none), each column by its own factor (DoRA's
   * m / ||W + s B A||). out may alias inp; scale is f32, bias any float dtype.
   */
  scaleColumns(out: Tensor, inp: Tensor, scale: Tensor, bias: Tensor | null, N: number, OC: number): void;
  /** out (OC) += scale (OC) * sum over rows of a (N, OC) * b (N, OC); all f32 (DoRA's magnitude gradient). */
  columnDot(out: Tensor, a: Tensor, b: Tensor, scale: Tensor, N: number, OC: number): void;

  // ---- layers ----
  /** out (N, C) = table[ids] ; ids (N) i32, table (V, C) */
  embeddingForward(out: Tensor, ids: Tensor, table: Tensor, N: number, C: number): void;
  /** dtable[ids[i]] += dout[i] */
  embeddingBackward(dtable: Tensor, dout: Tensor, ids: Tensor, N: number, C: number): void;

  /**
   * out (N, OC) = inp (N, C) @ weight (OC, C)^T + bias (OC) ; bias may be null.
   * nf4/fp4 weights: inp @ dequant(weight)^T in float32. int8: bitsandbytes' MatMul8bitLt (LLM.int8): inp rows
   * quantized to int8 by their absmax, int32 sums, scaled by rowAbsmax * SCB / 127^2; columns of inp holding any
   * |x| >= threshold (over all N rows) go through in float32 against the dequantized weight.
   */
  matmulForward(out: Tensor, inp: Tensor, weight: Tensor, bias: Tensor | null, N: number, C: number, OC: number): void;
  /** See "Compute dtype" above; absent on backends that compute only one way (cuda: bf16 weights always in bf16). */
  setComputeDtype?(dtype: ComputeDType): void;
  /**
   * dinp (N, C) = dout @ weight (overwrite; skipped when null),
   * dweight (OC, C) += dout^T @ inp (skipped when null), dbias (OC) += sum over rows (skipped when null).
   * A quantized weight is frozen: dinp uses its dequantized values (int8: w * (SCB / 127), as bitsandbytes'
   * backward does) and asking for its dweight is an error.
   */
  matmulBackward(
    dinp: Tensor | null, dweight: Tensor | null, dbias: Tensor | null,
    dout: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, OC: number,
  ): void;

  /** out (N, C) = inp * rstd * weight ; rstd (N) saved for backward */
  rmsnormForward(out: Tensor, rstd: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, eps: number): void;
  /** dinp = (overwrite) ; dweight += (skipped when null) */
  rmsnormBackward(dinp: Tensor, dweight: Tensor | null, dout: Tensor, inp: Tensor, weight: Tensor, rstd: Tensor, N: number, C: number): void;

  /**
   * Rotary embedding, HF rotate-half layout, in place on x (B, T, H, HD).
   * cos, sin (T, HD/2) are the per-position tables. `inverse` applies the transpose (the backward).
   */
  rope(x: Tensor, cos: Tensor, sin: Tensor, B: number, T: number, H: number, HD: number, inverse: boolean): void;

  /**
   * Causal attention with GQA and a key-padding mask (B, Tkv) i32 (1 = attend; null = none).
   * q (B, Tq, NH, HD); k, v (B, Tkv, NKV, HD) of which the first Tk time steps are valid (a KV cache
   * allocates Tkv >= Tk); query i sits at position Tk - Tq + i and sees keys 0..that position.
   * out (B, Tq, NH, HD); lse (B, NH, Tq) log-sum-exp saved for backward. Scale 1/sqrt(HD).
   * A query with no allowed key (a left-padding row) attends uniformly to all Tk keys, as HF's eager
   * attention does when its additive mask swamps every score; lse is then NaN, and the backward treats the
   * row as softmax over all Tk keys with uniform probabilities (the gradient HF computes for it).
   * Packed rows pass `segments` (B, Tkv) i32 instead of a mask: the query at position p sees key j only when
   * segments[b, j] = segments[b, p] (a block-diagonal causal mask, never materialised). Each segment is one
   * contiguous run of positions (kernels may skip the keys before it); mask must then be null, so every query
   * sees at least itself. Omitted or null: one segment per row.
   */
  attentionForward(
    out: Tensor, lse: Tensor, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null,
    B: number, Tq: number, Tk: number, Tkv: number, NH: number, NKV: number, HD: number, segments?: Tensor | null,
  ): void;
  /**
   * One decode step's attention for every row at once, over a paged KV cache (model/kv-cache.ts). The step's N
   * tokens are the rows' runs: row r's queries are q's rows [n0, n0 + Tq), at positions Tk - Tq .. Tk - 1 of that
   * row, each seeing the row's keys up to its own position. First the step's new keys and values k, v (N, NKV*HD)
   * are written into their cache slots (rounded once when the cache is 16-bit), then every query attends. Cache:
   * kCache[c], vCache[c] (blocksPerChunk * blockTokens, NKV*HD), all of one float dtype; block id b is chunk b / blocksPerChunk from time step
   * (b % blocksPerChunk) * blockTokens. rows (R * 3): n0, Tq, Tk per row; blocks (R * maxBlocks): each row's block
   * ids in time order. out, q (N, NH*HD). Scale 1/sqrt(HD). Inference only: no lse, no mask.
   */
  attentionPaged(
    out: Tensor, q: Tensor, k: Tensor, v: Tensor, kCache: readonly Tensor[], vCache: readonly Tensor[],
    rows: Int32Array, blocks: Int32Array, N: number, NH: number, NKV: number, HD: number, blockTokens: number, blocksPerChunk: number,
  ): void;
  /** Training shape only (Tq = Tk = Tkv = T), the same mask or segments as the forward. dq, dk, dv overwrite. */
  attentionBackward(
    dq: Tensor, dk: Tensor, dv: Tensor, dout: Tensor, out: Tensor, lse: Tensor,
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null,
    B: number, T: number, NH: number, NKV: number, HD: number, segments?: Tensor | null,
  ): void;

  /** out = silu(gate) * up, n elements */
  swigluForward(out: Tensor, gate: Tensor, up: Tensor, n: number): void;
  /** dgate, dup overwrite */
  swigluBackward(dgate: Tensor, dup: Tensor, dout: Tensor, gate: Tensor, up: Tensor, n: number): void;

  /**
   * Fused softmax cross-entropy over logits (N, V) with targets (N) i32 (-100 = ignored).
   * losses (N) = -log softmax(logits)[target] (0 where ignored). When dlogits is non-null it is written
   * (overwrite) with (softmax - onehot) * gradScale for counted rows and 0 for ignored rows; it may alias logits.
   */
  crossEntropy(losses: Tensor, dlogits: Tensor | null, logits: Tensor, targets: Tensor, N: number, V: number, gradScale: number): void;
  /**
   * out (R) i32 = for each row of x (R, V) f32 the first index of its largest value, as a left-to-right scan that
   * moves on only to a strictly greater value (torch.argmax on ties; a NaN never wins, except at index 0).
   */
  argmaxRows(out: Tensor, x: Tensor, R: number, V: number): void;

  // ---- optimizer ----
  /** out[0] += sum of squares of t (out: f32, 1 element). */
  sumSquares(out: Tensor, t: Tensor): void;
  /** torch.optim.AdamW step on param with grad and moments m, v; `step` counts from 1. */
  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
}
