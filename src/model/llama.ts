// The LLaMA decoder, forward and hand-written backward, op by op on a Backend (the llm.c way).
// Covers LLaMA 1/2/3, Mistral and Qwen2 math: RMSNorm, rotate-half RoPE, GQA causal attention with key
// padding or packed segments, SwiGLU, tied or untied head, cross-entropy with ignore index -100. Loading weights is in load.ts.

import type { LlamaConfig } from '../arch/llama-config.ts';
import type { Backend } from '../engine/backend.ts';
import { hash32 } from '../engine/random.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { Activations } from './activations.ts';
import type { BaseQuantization } from './quantized-base.ts';
import { linearBackward, linearForward, loraIntermediate, type LinearParams, type LoraRuntime, type LoraScratch } from './linear.ts';
import { PROJECTIONS, type LoraAdapter, type Projection } from './lora.ts';

// Gradient fields (d*) are set only for weights being trained (full fine-tuning); null/undefined = frozen.
export interface LayerWeights {
  inputNorm: Tensor; // (C)
  postNorm: Tensor; // (C)
  proj: Record<Projection, LinearParams>;
  dInputNorm?: Tensor | null;
  dPostNorm?: Tensor | null;
}

export interface LlamaWeights {
  embed: Tensor; // (V, C)
  layers: LayerWeights[];
  norm: Tensor; // (C)
  lmHead: Tensor; // (V, C); the embedding itself when tied
  dEmbed?: Tensor | null;
  dNorm?: Tensor | null;
  dLmHead?: Tensor | null; // dEmbed itself when tied
}

export interface LoraUse {
  adapter: LoraAdapter;
  dropout: number; // 0 at evaluation
  seed: number; // per micro-batch
}

export interface Model {
  be: Backend;
  config: LlamaConfig;
  weights: LlamaWeights;
  /** How the decoder linears are quantized in memory (load.ts); absent or null: 16/32-bit. */
  quantization?: BaseQuantization | null;
}

function loraRuntime(use: LoraUse | null, layer: number, p: Projection): LoraRuntime | null {
  const pair = use?.adapter.layers[layer]?.get(p);
  if (!use || !pair) return null;
  return { pair, scaling: use.adapter.scaling, dropout: use.dropout, seed: hash32(use.seed, layer * PROJECTIONS.length + PROJECTIONS.indexOf(p)) };
}

function loraScratch(be: Backend, a: Activations, layer: number, p: Projection, C: number, OC: number): LoraScratch | null {
  const t = a.layers[layer]!.loraT.get(p);
  if (!t || !a.lora) return null;
  const s = a.lora;
  const z = a.layers[layer]!.loraZ.get(p) ?? null;
  return { t, xd: be.view(s.xd, 0, [a.N, C]), y: be.view(s.y, 0, [a.N, OC]), dt: s.dt && be.view(s.dt, 0, [a.N, t.shape[1]!]), z };
}

/** The backward needs projection p's input when its weight trains or it has a LoRA branch. */
function needsInput(m: Model, lora: LoraUse | null, l: number, p: Projection): boolean {
  return m.weights.layers[l]!.proj[p].dWeight != null || loraRuntime(lora, l, p) !== null;
}

/** One decoder layer's tensors for N tokens: the training pass keeps a set per layer, decoding reuses one. */
export interface BlockTensors {
  xIn: Tensor; // (N, C) residual stream entering the layer
  xn: Tensor; // (N, C) normalized input (scratch)
  rstd1: Tensor; // (N)
  q: Tensor; // (N, NH*HD)
  k: Tensor; // (N, NKV*HD)
  v: Tensor; // (N, NKV*HD)
  att: Tensor; // (N, NH*HD)
  xMid: Tensor; // (N, C) residual after attention
  rstd2: Tensor; // (N)
  gate: Tensor; // (N, F)
  up: Tensor; // (N, F)
  h: Tensor; // (N, F) silu(gate) * up
}

/** What differs between the training pass and the KV-cache step: the projections (LoRA use) and attention. */
export interface BlockCalls {
  /** y (N, outF) = x (N, inF) through projection p of the layer, with its LoRA branch(es). */
  linear(p: Projection, y: Tensor, x: Tensor, inF: number, outF: number): void;
  /** Rotates t.q and t.k by their positions and writes attention over the visible keys into t.att. */
  attend(t: BlockTensors): void;
}

/**
 * The decoder block, shared by training, scoring, prefill and decoding: from t.xIn into `out` (the next layer's
 * input, (N, C)). With out = null it stops after SwiGLU (the backward's recompute of the saved set).
 */
export function decoderBlock(m: Model, l: number, N: number, t: BlockTensors, calls: BlockCalls, out: Tensor | null): void {
  const { be, config: cfg } = m;
  const C = cfg.hiddenSize, F = cfg.intermediateSize, QD = cfg.numHeads * cfg.headDim, KD = cfg.numKvHeads * cfg.headDim;
  const W = m.weights.layers[l]!;
  be.rmsnormForward(t.xn, t.rstd1, t.xIn, W.inputNorm, N, C, cfg.rmsNormEps);
  calls.linear('q_proj', t.q, t.xn, C, QD);
  calls.linear('k_proj', t.k, t.xn, C, KD);
  calls.linear('v_proj', t.v, t.xn, C, KD);
  calls.attend(t);
  calls.linear('o_proj', t.xMid, t.att, QD, C);
  be.add(t.xMid, t.xMid, t.xIn);
  be.rmsnormForward(t.xn, t.rstd2, t.xMid, W.postNorm, N, C, cfg.rmsNormEps);
  calls.linear('gate_proj', t.gate, t.xn, C, F);
  calls.linear('up_proj', t.up, t.xn, C, F);
  be.swigluForward(t.h, t.gate, t.up, N * F);
  if (!out) return;
  calls.linear('down_proj', out, t.h, F, C);
  be.add(out, out, t.xMid);
}

/**
 * Layer l's training/scoring forward from L.xIn into `out`. With out = null it refills the layer's saved set
 * for the backward (gradient checkpointing) and skips down_proj but for its LoRA intermediate.
 */
function layerForward(m: Model, a: Activations, lora: LoraUse | null, l: number, out: Tensor | null): void {
  const { be, config: cfg } = m;
  const { B, T, N } = a;
  const NH = cfg.numHeads, NKV = cfg.numKvHeads, HD = cfg.headDim;
  const L = a.layers[l]!, W = m.weights.layers[l]!;
  const calls: BlockCalls = {
    linear: (p, y, x, inF, outF) => linearForward(be, y, x, W.proj[p], N, inF, outF, loraRuntime(lora, l, p), loraScratch(be, a, l, p, inF, outF)),
    attend: (t) => {
      rotate(be, a, t.q, NH, HD, false);
      rotate(be, a, t.k, NKV, HD, false);
      be.attentionForward(t.att, L.lse, t.q, t.k, t.v, keyMask(a), B, T, T, T, NH, NKV, HD, a.segments);
    },
  };
  decoderBlock(m, l, N, { ...L, xn: a.xn, h: a.h }, calls, out);
  if (out) return;
  const down = loraRuntime(lora, l, 'down_proj'), ds = loraScratch(be, a, l, 'down_proj', cfg.intermediateSize, cfg.hiddenSize);
  if (down?.pair.dora && ds) calls.linear('down_proj', a.scratch!.dtmp, a.h, cfg.intermediateSize, cfg.hiddenSize); // refills DoRA's z; dtmp is free here
  else if (down && ds) loraIntermediate(be, a.h, N, cfg.intermediateSize, down, ds);
}

/** Rotary embedding of x (N, H, HD) in place: packed rows by per-token tables (positions restart per segment), else by position. */
function rotate(be: Backend, a: Activations, x: Tensor, H: number, HD: number, inverse: boolean): void {
  if (a.segments) be.rope(x, a.cos, a.sin, 1, a.N, H, HD, inverse);
  else be.rope(x, a.cos, a.sin, a.B, a.T, H, HD, inverse);
}

/** Packed rows are kept apart by their segments, which come without a key mask (their padding is a segment of its own). */
function keyMask(a: Activations): Tensor | null {
  return a.segments ? null : a.mask;
}

/** Runs the decoder over a.ids / a.mask up to the final norm (a.xnF). */
export function forward(m: Model, a: Activations, lora: LoraUse | null): void {
  const { be, config: cfg, weights: w } = m;
  const C = cfg.hiddenSize;
  be.embeddingForward(a.layers[0]!.xIn, a.ids, w.embed, a.N, C);
  for (let l = 0; l < cfg.numLayers; l++) layerForward(m, a, lora, l, l + 1 < cfg.numLayers ? a.layers[l + 1]!.xIn : a.xOut);
  be.rmsnormForward(a.xnF, a.rstdF, a.xOut, w.norm, a.N, C, cfg.rmsNormEps);
}

/**
 * The head, chunked over rows so (N, V) logits never exist at once: logits -> cross-entropy against
 * a.targets -> (when withGrad) dlogits -> d(xnF) in a.scratch.dxn. gradScale multiplies every token's
 * gradient (1 / counted tokens of the optimizer step). `onLogits(row0, rows, logits)` sees each chunk.
 * Returns the sum of token losses.
 */
export async function head(
  m: Model, a: Activations, withGrad: boolean, gradScale: number,
  onLogits?: (row0: number, rows: number, logits: Float32Array) => void,
): Promise<number> {
  const { be, config: cfg, weights: w } = m;
  const C = cfg.hiddenSize, V = cfg.vocabSize;
  for (let row0 = 0; row0 < a.N; row0 += a.headRows) {
    const rows = Math.min(a.headRows, a.N - row0);
    const x = be.view(a.xnF, row0 * C, [rows, C]);
    const logits = be.view(a.logits, 0, [rows, V]);
    be.matmulForward(logits, x, w.lmHead, null, rows, C, V);
    if (onLogits) onLogits(row0, rows, (await be.download(logits)) as Float32Array);
    const losses = be.view(a.losses, row0, [rows]);
    const targets = be.view(a.targets, row0, [rows]);
    be.crossEntropy(losses, withGrad ? logits : null, logits, targets, rows, V, gradScale);
    if (withGrad) be.matmulBackward(be.view(a.scratch!.dxn, row0 * C, [rows, C]), w.dLmHead ?? null, null, logits, x, w.lmHead, rows, C, V);
  }
  const losses = (await be.download(a.losses)) as Float32Array;
  let sum = 0;
  for (const v of losses) sum += v;
  return sum;
}

/**
 * Backpropagates from a.scratch.dxn (set by head) to the LoRA (and any trained) parameter gradients. The
 * normalized inputs and h are recomputed from what the forward saved (bit for bit: the same ops on the same values).
 */
export function backward(m: Model, a: Activations, lora: LoraUse | null): void {
  const { be, config: cfg, weights: w } = m;
  const { B, T, N } = a;
  const C = cfg.hiddenSize, F = cfg.intermediateSize, HD = cfg.headDim;
  const NH = cfg.numHeads, NKV = cfg.numKvHeads, QD = NH * HD, KD = NKV * HD;
  const s = a.scratch!;
  const dtmpC = s.dtmp;
  const lin = (l: number, p: Projection, dx: Tensor | null, dy: Tensor, x: Tensor, inF: number, outF: number) =>
    linearBackward(be, dx, dy, x, w.layers[l]!.proj[p], N, inF, outF, loraRuntime(lora, l, p), loraScratch(be, a, l, p, inF, outF));
  const needs = (l: number, ...ps: Projection[]) => ps.some((p) => needsInput(m, lora, l, p));
  be.rmsnormBackward(s.dres, w.dNorm ?? null, s.dxn, a.xOut, w.norm, a.rstdF, N, C);
  for (let l = cfg.numLayers - 1; l >= 0; l--) {
    const L = a.layers[l]!, W = w.layers[l]!;
    if (a.checkpointing) layerForward(m, a, lora, l, null);
    // MLP: dres is the gradient of the layer output = xMid + down(h)
    if (needs(l, 'down_proj')) be.swigluForward(a.h, L.gate, L.up, N * F);
    lin(l, 'down_proj', s.dh, s.dres, a.h, F, C);
    be.swigluBackward(s.dgate, s.dup, s.dh, L.gate, L.up, N * F);
    if (needs(l, 'gate_proj', 'up_proj')) be.rmsnormForward(a.xn, L.rstd2, L.xMid, W.postNorm, N, C, cfg.rmsNormEps);
    lin(l, 'gate_proj', s.dxn, s.dgate, a.xn, C, F);
    lin(l, 'up_proj', dtmpC, s.dup, a.xn, C, F);
    be.axpy(s.dxn, dtmpC, 1);
    be.rmsnormBackward(dtmpC, W.dPostNorm ?? null, s.dxn, L.xMid, W.postNorm, L.rstd2, N, C);
    be.axpy(s.dres, dtmpC, 1);
    // attention: dres is now the gradient of xMid = xIn + o(att)
    lin(l, 'o_proj', s.datt, s.dres, L.att, QD, C);
    be.attentionBackward(s.dq, s.dk, s.dv, s.datt, L.att, L.lse, L.q, L.k, L.v, keyMask(a), B, T, NH, NKV, HD, a.segments);
    rotate(be, a, s.dq, NH, HD, true);
    rotate(be, a, s.dk, NKV, HD, true);
    if (needs(l, 'q_proj', 'k_proj', 'v_proj')) be.rmsnormForward(a.xn, L.rstd1, L.xIn, W.inputNorm, N, C, cfg.rmsNormEps);
    // below the first layer only a trained embedding or input norm needs the gradient of the layer's input
    const inputGrad = l > 0 || w.dEmbed != null || W.dInputNorm != null;
    lin(l, 'q_proj', inputGrad ? s.dxn : null, s.dq, a.xn, C, QD);
    lin(l, 'k_proj', inputGrad ? dtmpC : null, s.dk, a.xn, C, KD);
    if (inputGrad) be.axpy(s.dxn, dtmpC, 1);
    lin(l, 'v_proj', inputGrad ? dtmpC : null, s.dv, a.xn, C, KD);
    if (!inputGrad) continue;
    be.axpy(s.dxn, dtmpC, 1);
    be.rmsnormBackward(dtmpC, W.dInputNorm ?? null, s.dxn, L.xIn, W.inputNorm, L.rstd1, N, C);
    be.axpy(s.dres, dtmpC, 1);
  }
  if (w.dEmbed) be.embeddingBackward(w.dEmbed, s.dres, a.ids, N, C);
}
