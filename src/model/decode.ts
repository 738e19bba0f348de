// One forward step of incremental decoding: Tq new tokens in each of `rows` rows against the KV cache,
// returning the logits of each row's last new token. Positions come from the attention mask (HF generate's
// cumsum - 1), so left-padded rows start at 0. Not the training forward (llama.ts), not token choice (generate/).

import type { Tensor } from '../engine/tensor.ts';
import { allocKvCache, freeKvCache, type KvCache } from './kv-cache.ts';
import { linearForward, type LoraRuntime, type LoraScratch } from './linear.ts';
import type { LoraUse, Model } from './llama.ts';
import type { Projection } from './lora.ts';
import { ropeTables } from './rope.ts';

/** Buffers for up to maxTokens = rows * Tq new tokens per step; smaller steps use views of them. */
interface StepBuffers {
  ids: Tensor; // (N) i32
  x: Tensor; // (N, C) residual stream
  xn: Tensor; // (N, C)
  rstd: Tensor; // (N)
  q: Tensor; // (N, NH*HD)
  k: Tensor; // (N, NKV*HD)
  v: Tensor; // (N, NKV*HD)
  att: Tensor; // (N, NH*HD)
  lse: Tensor; // (N * NH)
  mid: Tensor; // (N, C) residual after attention
  gate: Tensor; // (N, F)
  up: Tensor; // (N, F)
  h: Tensor; // (N, F)
  cos: Tensor; // (N, HD/2)
  sin: Tensor;
  loraT: Tensor; // (N, r)
  loraY: Tensor; // (N, max out)
  last: Tensor; // (B, C) each row's last position
  lastN: Tensor; // (B, C) after the final norm
  lastRstd: Tensor; // (B)
  logits: Tensor; // (B, V)
}

export interface Decoder {
  readonly model: Model;
  readonly lora: LoraUse | null;
  readonly cache: KvCache;
  readonly maxTokens: number;
  readonly buf: StepBuffers;
}

/** A decoder for B rows of up to `capacity` tokens each, whose steps feed at most maxTokens tokens in all. */
export function createDecoder(model: Model, lora: LoraUse | null, B: number, capacity: number, maxTokens: number): Decoder {
  const { be, config: cfg } = model;
  const N = Math.max(maxTokens, B);
  const C = cfg.hiddenSize, F = cfg.intermediateSize, QD = cfg.numHeads * cfg.headDim, KD = cfg.numKvHeads * cfg.headDim;
  const f = (...shape: number[]) => be.alloc(shape, 'f32', 'scratch');
  const r = lora?.adapter.settings.r ?? 1;
  const buf: StepBuffers = {
    ids: be.alloc([N], 'i32', 'scratch'),
    x: f(N, C), xn: f(N, C), rstd: f(N), q: f(N, QD), k: f(N, KD), v: f(N, KD), att: f(N, QD), lse: f(N * cfg.numHeads),
    mid: f(N, C), gate: f(N, F), up: f(N, F), h: f(N, F), cos: f(N, cfg.headDim / 2), sin: f(N, cfg.headDim / 2),
    loraT: f(N, r), loraY: f(N, Math.max(C, F, QD)),
    last: f(B, C), lastN: f(B, C), lastRstd: f(B), logits: f(B, cfg.vocabSize),
  };
  return { model, lora, cache: allocKvCache(be, cfg, B, capacity), maxTokens: N, buf };
}

export function freeDecoder(d: Decoder): void {
  const be = d.model.be;
  freeKvCache(be, d.cache);
  for (const t of Object.values(d.buf)) be.free(t);
}

export interface StepInput {
  ids: Int32Array; // (rows, Tq) the new tokens
  rows: number; // the first `rows` cache rows take part (a prompt shared by beams is fed once, then copied)
  Tq: number;
  mask?: Int32Array; // (rows, Tq) 0 = left padding; all ones when absent
}

/** Feeds the new tokens, appends their keys and values to the cache, returns last-position logits (rows, V). */
export async function decodeStep(d: Decoder, input: StepInput): Promise<Float32Array> {
  const { model: m, cache, buf } = d;
  const { be, config: cfg, weights: w } = m;
  const { rows, Tq } = input;
  const N = rows * Tq;
  if (input.ids.length !== N) throw new Error(`decodeStep: ${input.ids.length} ids for ${rows} rows of ${Tq}`);
  if (N > d.maxTokens || rows > cache.B) throw new Error(`decodeStep: ${rows} rows of ${Tq} exceed the decoder's buffers`);
  if (cache.length + Tq > cache.capacity) throw new Error(`decodeStep: the KV cache holds ${cache.capacity} steps; ${cache.length + Tq} needed`);
  const C = cfg.hiddenSize, F = cfg.intermediateSize, HD = cfg.headDim;
  const NH = cfg.numHeads, NKV = cfg.numKvHeads, QD = NH * HD, KD = NKV * HD, Tkv = cache.capacity;
  const view = (t: Tensor, ...shape: number[]) => be.view(t, 0, shape);
  const x = view(buf.x, N, C), xn = view(buf.xn, N, C), rstd = view(buf.rstd, N);
  const q = view(buf.q, N, QD), k = view(buf.k, N, KD), v = view(buf.v, N, KD), att = view(buf.att, N, QD);
  const mid = view(buf.mid, N, C), gate = view(buf.gate, N, F), up = view(buf.up, N, F), h = view(buf.h, N, F);
  const ids = view(buf.ids, N);
  be.upload(ids, input.ids);
  const rope = uploadPositions(d, input);
  const lin = (l: number, p: Projection, out: Tensor, inp: Tensor, inF: number, outF: number) =>
    linearForward(be, out, inp, w.layers[l]!.proj[p], N, inF, outF, ...loraFor(d, l, p, N, outF));

  be.embeddingForward(x, ids, w.embed, N, C);
  for (let l = 0; l < cfg.numLayers; l++) {
    const W = w.layers[l]!;
    be.rmsnormForward(xn, rstd, x, W.inputNorm, N, C, cfg.rmsNormEps);
    lin(l, 'q_proj', q, xn, C, QD);
    lin(l, 'k_proj', k, xn, C, KD);
    lin(l, 'v_proj', v, xn, C, KD);
    rope(q, NH);
    rope(k, NKV);
    const ck = view(cache.k[l]!, rows, Tkv, KD), cv = view(cache.v[l]!, rows, Tkv, KD);
    be.copyTime(ck, k, rows, KD, Tkv, cache.length, Tq, 0, Tq);
    be.copyTime(cv, v, rows, KD, Tkv, cache.length, Tq, 0, Tq);
    be.attentionForward(att, view(buf.lse, rows * NH * Tq), q, ck, cv, view(cache.mask, rows, Tkv), rows, Tq, cache.length + Tq, Tkv, NH, NKV, HD);
    lin(l, 'o_proj', mid, att, QD, C);
    be.add(mid, mid, x);
    be.rmsnormForward(xn, rstd, mid, W.postNorm, N, C, cfg.rmsNormEps);
    lin(l, 'gate_proj', gate, xn, C, F);
    lin(l, 'up_proj', up, xn, C, F);
    be.swigluForward(h, gate, up, N * F);
    lin(l, 'down_proj', x, h, F, C);
    be.add(x, x, mid);
  }
  cache.length += Tq;
  const last = view(buf.last, rows, C), lastN = view(buf.lastN, rows, C), logits = view(buf.logits, rows, cfg.vocabSize);
  be.copyTime(last, x, rows, C, 1, 0, Tq, Tq - 1, 1);
  be.rmsnormForward(lastN, view(buf.lastRstd, rows), last, w.norm, rows, C, cfg.rmsNormEps);
  be.matmulForward(logits, lastN, w.lmHead, null, rows, C, cfg.vocabSize);
  return (await be.download(logits)) as Float32Array;
}

/**
 * Extends the cache's mask with the new tokens, gives each real token the next position of its row (padding
 * gets 1, as HF does), uploads the rope tables, and returns the in-place rotation for (N, H*HD) tensors:
 * one call when every row has the same positions, else one per row.
 */
function uploadPositions(d: Decoder, input: StepInput): (t: Tensor, H: number) => void {
  const { model: m, cache, buf } = d;
  const be = m.be;
  const { rows, Tq } = input;
  const HD = m.config.headDim, half = HD / 2;
  const positions: number[] = [];
  for (let b = 0; b < rows; b++) {
    for (let t = 0; t < Tq; t++) {
      const real = input.mask ? input.mask[b * Tq + t]! : 1;
      cache.hostMask[b * cache.capacity + cache.length + t] = real ? 1 : 0;
      positions.push(real ? cache.nextPosition[b]!++ : 1);
    }
  }
  be.upload(cache.mask, cache.hostMask);
  const shared = positions.every((p, i) => p === positions[i % Tq]);
  const tableRows = shared ? Tq : rows * Tq;
  const { cos, sin } = ropeTables(m.config, positions.slice(0, tableRows));
  const cosT = be.view(buf.cos, 0, [tableRows, half]), sinT = be.view(buf.sin, 0, [tableRows, half]);
  be.upload(cosT, cos);
  be.upload(sinT, sin);
  return (t, H) => {
    if (shared) return be.rope(t, cosT, sinT, rows, Tq, H, HD, false);
    for (let b = 0; b < rows; b++) {
      const row = be.view(t, b * Tq * H * HD, [Tq, H * HD]);
      be.rope(row, be.view(buf.cos, b * Tq * half, [Tq, half]), be.view(buf.sin, b * Tq * half, [Tq, half]), 1, Tq, H, HD, false);
    }
  };
}

/** The LoRA branch of one projection at generation (no dropout), with scratch views for N rows. */
function loraFor(d: Decoder, l: number, p: Projection, N: number, outF: number): [LoraRuntime | null, LoraScratch | null] {
  const pair = d.lora?.adapter.layers[l]?.get(p);
  if (!d.lora || !pair) return [null, null];
  const be = d.model.be;
  const t = be.view(d.buf.loraT, 0, [N, pair.A.shape[0]!]);
  const y = be.view(d.buf.loraY, 0, [N, outF]);
  // xd and dt serve only dropout and the backward; forward at dropout 0 never touches them
  return [{ pair, scaling: d.lora.adapter.scaling, dropout: 0, seed: 0 }, { t, xd: y, y, dt: t }];
}
