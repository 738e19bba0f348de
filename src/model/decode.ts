// One step of batched incremental decoding: each row (a sequence in the paged KV cache) feeds its new tokens
// (a prefill chunk or one decoded token) at its own positions, with its own adapter or none; the step returns
// the logits of the last new token of the rows that ask for them. Tokens of all rows form one (N, C) stream,
// so every base projection is one GEMM; each adapter's LoRA delta is added to its rows (rows are grouped by
// adapter); rope takes a per-token table; one attentionPaged call per layer writes the new keys and values into
// the rows' cache blocks and attends each row to its own keys, read in place through its block table.
// The layer itself is llama.ts's decoderBlock. Not token choice (generate/) and not scheduling.

import type { DType } from '../engine/dtype.ts';
import type { Tensor } from '../engine/tensor.ts';
import { resolveActivationDtype, type ActivationDType } from './activation-dtype.ts';
import { KV_BLOCK_TOKENS, KvPool, type KvSeq } from './kv-cache.ts';
import { refreshDora } from './dora.ts';
import { addLoraBranch, linearForward } from './linear.ts';
import { decoderBlock, type BlockCalls, type BlockTensors, type LoraUse, type Model } from './llama.ts';
import type { LoraAdapter, Projection } from './lora.ts';
import { writeRopeTables } from './rope.ts';

export interface DecodeRow {
  seq: KvSeq;
  ids: readonly number[]; // the new tokens, at positions seq.length, seq.length + 1, ...
  lora: LoraUse | null;
  logits: boolean | 'argmax'; // return its last new token's logits and greedy choice, only the choice, or neither
}

/** decodeBatch's results for the rows with `logits` set, in the order given (views valid until the next step). */
export interface DecodeOut {
  logits: Float32Array; // (R, V); empty when every such row asked for 'argmax' only (then they are not copied out)
  argmax: Int32Array; // (R): each row's first index of its largest logit
}

export interface Decoder {
  readonly model: Model;
  readonly pool: KvPool;
  /** What the KV cache and the projections' inputs are stored in: the model's automatic activation dtype. */
  readonly dtype: ActivationDType;
  /** Step buffers by name, each allocated for the largest step seen and viewed for smaller ones. */
  readonly buffers: Map<string, Tensor>;
  /** The last view of each buffer, kept while its shape repeats (decoding steps of one batch size). */
  readonly views: Map<string, { shape: string; view: Tensor }>;
  /** DoRA adapters whose factors (dora.ts) were computed for this decoder: once, at their first step. */
  readonly doraReady: WeakSet<LoraAdapter>;
  /** The host array each step's logits are downloaded into (grown as needed): no fresh pages per step. */
  hostLogits: Float32Array;
}

/**
 * A decoder whose KV cache holds at most maxKvBlocks blocks (kv-cache.ts) across its rows. The cache and the
 * projections' inputs are stored in the model's automatic activation dtype: bf16 for a bf16 base on cpu, as
 * llama.cpp rounds a bf16 weight's inputs (half the bytes attention streams; the products are exact bf16 products
 * summed in float32, vdpbf16ps). The residual stream and the projections' outputs stay float32.
 */
export function createDecoder(model: Model, maxKvBlocks: number): Decoder {
  const dtype = resolveActivationDtype('auto', model);
  const pool = new KvPool(model.be, model.config, maxKvBlocks, dtype);
  return { model, pool, dtype, buffers: new Map(), views: new Map(), doraReady: new WeakSet(), hostLogits: new Float32Array(0) };
}

/** Frees the KV cache and the step buffers; the decoder stays usable (the next step allocates again). */
export function freeDecoder(d: Decoder): void {
  d.pool.dispose();
  for (const t of d.buffers.values()) d.model.be.free(t);
  d.buffers.clear();
  d.views.clear();
}

/** The buffer `name` of at least `n` elements, regrown when too small. */
function buffer(d: Decoder, name: string, n: number, dtype: DType = 'f32'): Tensor {
  let t = d.buffers.get(name);
  if (!t || t.size < n) {
    if (t) d.model.be.free(t);
    d.buffers.set(name, (t = d.model.be.alloc([n], dtype, 'scratch')));
    d.views.delete(name);
  }
  return t;
}

/** Buffer `name` viewed as `shape`. */
function stepView(d: Decoder, name: string, dtype: DType, shape: number[]): Tensor {
  const key = shape.join(',');
  const t = buffer(d, name, shape.reduce((a, b) => a * b, 1), dtype);
  const cached = d.views.get(name);
  if (cached?.shape === key) return cached.view;
  const view = d.model.be.view(t, 0, shape);
  d.views.set(name, { shape: key, view });
  return view;
}

/** Feeds every row's new tokens, appends their keys and values to the rows' caches, and returns DecodeOut. */
export async function decodeBatch(d: Decoder, rows: readonly DecodeRow[]): Promise<DecodeOut> {
  const { model: m, pool } = d;
  const { be, config: cfg, weights: w } = m;
  const C = cfg.hiddenSize, F = cfg.intermediateSize, HD = cfg.headDim, V = cfg.vocabSize;
  const NH = cfg.numHeads, NKV = cfg.numKvHeads, QD = NH * HD, KD = NKV * HD, half = HD / 2;
  if (rows.some((r) => r.ids.length === 0)) throw new Error('decodeBatch: a row with no new tokens');
  // token ranges grouped by adapter, so each adapter's delta is one call over contiguous rows of the stream
  const adapters = [...new Set(rows.map((r) => r.lora))];
  const order = rows.map((_, i) => i).sort((a, b) => adapters.indexOf(rows[a]!.lora) - adapters.indexOf(rows[b]!.lora) || a - b);
  const start: number[] = [];
  let N = 0;
  for (const i of order) {
    start[i] = N;
    N += rows[i]!.ids.length;
  }
  const groups = adapters.map((lora) => {
    const members = order.filter((i) => rows[i]!.lora === lora);
    return { lora, n0: start[members[0]!]!, n: members.reduce((s, i) => s + rows[i]!.ids.length, 0) };
  });
  for (const r of rows) pool.grow(r.seq, r.ids.length);
  for (const { lora } of groups) {
    if (!lora?.adapter.settings.useDora || d.doraReady.has(lora.adapter)) continue;
    await refreshDora(m, lora.adapter);
    d.doraReady.add(lora.adapter);
  }

  const ids = new Int32Array(N), cos = new Float32Array(N * half), sin = new Float32Array(N * half);
  rows.forEach((r, i) => {
    ids.set(r.ids, start[i]!);
    writeRopeTables(cfg, Array.from(r.ids, (_, t) => r.seq.length + t), cos, sin, start[i]!);
  });
  const rank = Math.max(1, ...rows.map((r) => r.lora?.adapter.settings.r ?? 1));
  const idsT = stepView(d, 'ids', 'i32', [N]);
  be.upload(idsT, ids);
  // (N, HD/2): row n holds token n's position
  const cosT = stepView(d, 'cos', 'f32', [N, half]), sinT = stepView(d, 'sin', 'f32', [N, half]);
  be.upload(cosT, cos);
  be.upload(sinT, sin);
  const x = stepView(d, 'x', 'f32', [N, C]); // the residual stream, updated in place layer by layer
  const t: BlockTensors = {
    xIn: x,
    xn: stepView(d, 'xn', d.dtype, [N, C]), // the projections' inputs, in the activation dtype
    att: stepView(d, 'att', d.dtype, [N, QD]),
    h: stepView(d, 'h', d.dtype, [N, F]),
    rstd1: stepView(d, 'rstd1', 'f32', [N]),
    q: stepView(d, 'q', 'f32', [N, QD]),
    k: stepView(d, 'k', 'f32', [N, KD]),
    v: stepView(d, 'v', 'f32', [N, KD]),
    xMid: stepView(d, 'xMid', 'f32', [N, C]),
    rstd2: stepView(d, 'rstd2', 'f32', [N]),
    gate: stepView(d, 'gate', 'f32', [N, F]),
    up: stepView(d, 'up', 'f32', [N, F]),
  };
  const loraT = buffer(d, 'loraT', N * rank), loraY = buffer(d, 'loraY', N * Math.max(C, F, QD));
  // each row's tokens in the stream and its block table, for attentionPaged
  const maxBlocks = Math.max(...rows.map((r) => r.seq.blocks.length));
  const rowInfo = new Int32Array(rows.length * 3), blockTable = new Int32Array(rows.length * maxBlocks);
  rows.forEach((r, i) => {
    rowInfo.set([start[i]!, r.ids.length, r.seq.length + r.ids.length], 3 * i);
    blockTable.set(r.seq.blocks, i * maxBlocks);
  });

  be.embeddingForward(x, idsT, w.embed, N, C);
  let l = 0; // the layer the calls below serve
  const calls: BlockCalls = {
    linear(p: Projection, out, inp, inF, outF) {
      const W = w.layers[l]!;
      be.matmulForward(out, inp, W.proj[p].weight, W.proj[p].bias, N, inF, outF);
      for (const g of groups) {
        const pair = g.lora?.adapter.layers[l]?.get(p);
        if (!g.lora || !pair) continue;
        const y = be.view(loraY, 0, [g.n, outF]);
        const rowsOut = be.view(out, g.n0 * outF, [g.n, outF]), rowsIn = be.view(inp, g.n0 * inF, [g.n, inF]);
        const runtime = { pair, scaling: g.lora.adapter.scaling, dropout: 0, seed: 0 };
        const scratch = { t: be.view(loraT, 0, [g.n, pair.A.shape[0]!]), xd: y, y, dt: null, z: null };
        // DoRA scales the base product too, so its rows are recomputed whole
        if (pair.dora) linearForward(be, rowsOut, rowsIn, W.proj[p], g.n, inF, outF, runtime, scratch);
        else addLoraBranch(be, rowsOut, rowsIn, g.n, inF, outF, runtime, scratch);
      }
    },
    attend(b) {
      be.rope(b.q, cosT, sinT, 1, N, NH, HD, false);
      be.rope(b.k, cosT, sinT, 1, N, NKV, HD, false);
      be.attentionPaged(
        b.att, b.q, b.k, b.v, pool.layer('k', l), pool.layer('v', l), rowInfo, blockTable, N, NH, NKV, HD, KV_BLOCK_TOKENS, pool.chunkBlocks,
      );
    },
  };
  for (; l < cfg.numLayers; l++) decoderBlock(m, l, N, t, calls, x);
  for (const r of rows) r.seq.length += r.ids.length;

  const want = rows.map((r, i) => ({ r, i })).filter(({ r }) => r.logits);
  const R = want.length;
  if (R === 0) return { logits: new Float32Array(0), argmax: new Int32Array(0) };
  // each wanted row's last token, gathered; when that is every token in order (decoding rows), x itself
  const inOrder = R === N && want.every(({ r, i }, j) => start[i] === j && r.ids.length === 1);
  const last = inOrder ? x : stepView(d, 'last', 'f32', [R, C]);
  const lastN = stepView(d, 'lastN', d.dtype, [R, C]), logits = stepView(d, 'logits', 'f32', [R, V]);
  if (!inOrder) want.forEach(({ r, i }, j) => be.copyTime(last, x, 1, C, R, j, N, start[i]! + r.ids.length - 1, 1));
  be.rmsnormForward(lastN, stepView(d, 'lastRstd', 'f32', [R]), last, w.norm, R, C, cfg.rmsNormEps);
  be.matmulForward(logits, lastN, w.lmHead, null, R, C, V);
  const choices = stepView(d, 'argmax', 'i32', [R]);
  be.argmaxRows(choices, logits, R, V);
  const argmax = (await be.download(choices)) as Int32Array;
  if (want.every(({ r }) => r.logits === 'argmax')) return { logits: new Float32Array(0), argmax };
  if (d.hostLogits.length < R * V) d.hostLogits = new Float32Array(R * V);
  return { logits: (await be.download(logits, d.hostLogits.subarray(0, R * V))) as Float32Array, argmax };
}
