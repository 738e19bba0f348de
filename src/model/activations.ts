// What one forward/backward pass over a (B, T) batch keeps, written down as data (activationPlan: every buffer,
// its shape and dtype, whether it is saved per layer), and the Activations object built from views of those
// buffers. The plan depends on what trains and on checkpointing; it needs no backend, so a planner can price it.
// Not the buffers' lifetime (compute.ts keeps them, sized once for the largest shape).

import type { LlamaConfig } from '../arch/llama-config.ts';
import type { DType } from '../engine/dtype.ts';
import type { ActivationDType } from './activation-dtype.ts';
import type { Tensor } from '../engine/tensor.ts';
import { projectionFeatures } from '../arch/projections.ts';
import type { Projection } from './lora.ts';

/** Rows of logits materialised at once, in training and scoring, so (N, V) logits never exist: a multiple of 128;
 * (256, V) f32 is 33 MB at V = 32000, 131 MB at LLaMA 3's 128256. */
export const HEAD_CHUNK_ROWS = 256;

export interface ActivationSettings {
  /** The pass runs a backward (training); false: forward only (eval, scoring, probes). */
  withGrad: boolean;
  /** LoRA targets and rank (every layer gets every target); [] when no adapter is used. */
  loraTargets: readonly Projection[];
  loraR: number;
  /** DoRA: a training pass also keeps each target's z = xd W^T + t B^T (N, out) for the magnitude's gradient. */
  dora?: boolean;
  /** Keep only each layer's input; the backward recomputes the layer's forward. */
  checkpointing: boolean;
  /** Storage of the activations (residual stream, q/k/v, attention, MLP, norm outputs); default f32. rstd, lse, LoRA, logits and gradients stay f32. */
  dtype?: ActivationDType;
  /** Packed rows (--packing): segment ids (B, T) and RoPE tables per token (N, HD/2) instead of per position (T, HD/2). */
  packed?: boolean;
}

export interface PlannedBuffer {
  name: string; // 'layers.3.q', 'logits', 'grad.dq', ...
  dims: string; // '(N, NH*HD)': N = B*T
  shape: number[];
  dtype: DType;
  /** Kept from a layer's forward to its backward (one per layer); false: shared by all layers or not per layer. */
  saved: boolean;
}

/** Per layer: what the backward reads. Normalized inputs (xn1, xn2) and h = silu(gate)*up are recomputed. */
function layerBuffers(cfg: LlamaConfig, B: number, T: number, s: ActivationSettings): [string, string, number[]][] {
  const N = B * T, C = cfg.hiddenSize, F = cfg.intermediateSize, NH = cfg.numHeads, QD = NH * cfg.headDim, KD = cfg.numKvHeads * cfg.headDim;
  return [
    ['rstd1', '(N)', [N]],
    ['q', '(N, NH*HD)', [N, QD]], // after rope
    ['k', '(N, NKV*HD)', [N, KD]], // after rope
    ['v', '(N, NKV*HD)', [N, KD]],
    ['att', '(N, NH*HD)', [N, QD]], // attention output: o_proj's input and the backward's row term dO·O
    ['lse', '(B, NH, T)', [B, NH, T]],
    ['xMid', '(N, C)', [N, C]], // residual after attention
    ['rstd2', '(N)', [N]],
    ['gate', '(N, F)', [N, F]],
    ['up', '(N, F)', [N, F]],
    ...s.loraTargets.map((p): [string, string, number[]] => [`lora.${p}`, '(N, r)', [N, s.loraR]]), // scaling * dropout(x) A^T
    ...(s.dora && s.withGrad ? s.loraTargets.map((p): [string, string, number[]] => [`loraZ.${p}`, '(N, out)', [N, projectionFeatures(cfg, p).outFeatures]]) : []),
  ];
}

/**
 * Every buffer a pass needs. Training saves each layer's set; with checkpointing only each layer's input xIn is
 * saved and the rest is one working set (layer 0's names) that the backward refills; a forward-only pass uses
 * layer 0's names for every layer, so it fits in a training pass's buffers.
 */
export function activationPlan(cfg: LlamaConfig, B: number, T: number, s: ActivationSettings): PlannedBuffer[] {
  const N = B * T, C = cfg.hiddenSize, F = cfg.intermediateSize, V = cfg.vocabSize, HD = cfg.headDim;
  const QD = cfg.numHeads * HD, KD = cfg.numKvHeads * HD;
  const out: PlannedBuffer[] = [];
  const add = (name: string, dims: string, shape: number[], saved = false, dtype: DType = 'f32') => out.push({ name, dims, shape, dtype, saved });
  add('ids', '(N)', [N], false, 'i32');
  add('mask', '(B, T)', [B, T], false, 'i32');
  add('targets', '(N)', [N], false, 'i32');
  if (s.packed) add('segments', '(B, T)', [B, T], false, 'i32');
  for (const name of ['cos', 'sin']) s.packed ? add(name, '(N, HD/2)', [N, HD / 2]) : add(name, '(T, HD/2)', [T, HD / 2]);
  const act = s.dtype ?? 'f32';
  const perLayer = s.withGrad ? cfg.numLayers : 1;
  for (let l = 0; l < perLayer; l++) add(`layers.${l}.xIn`, '(N, C)', [N, C], s.withGrad, act);
  const sets = s.withGrad && !s.checkpointing ? cfg.numLayers : 1;
  for (let l = 0; l < sets; l++) {
    for (const [name, dims, shape] of layerBuffers(cfg, B, T, s)) {
      add(`layers.${l}.${name}`, dims, shape, s.withGrad && !s.checkpointing, /^(rstd|lse|lora)/.test(name) ? 'f32' : act);
    }
  }
  add('xn', '(N, C)', [N, C], false, act); // normalized layer input (input_layernorm or post_attention_layernorm output)
  add('h', '(N, F)', [N, F], false, act); // silu(gate) * up, down_proj's input
  add('xOut', '(N, C)', [N, C], false, act);
  add('rstdF', '(N)', [N]);
  add('xnF', '(N, C)', [N, C], false, act);
  add('losses', '(N)', [N]);
  add('logits', `(min(N, ${HEAD_CHUNK_ROWS}), V)`, [Math.min(N, HEAD_CHUNK_ROWS), V]);
  if (s.loraTargets.length) {
    const wide = Math.max(C, F, QD);
    add('lora.xd', '(N, max(C, F, NH*HD))', [N, wide]);
    add('lora.y', '(N, max(C, F, NH*HD))', [N, wide]);
    if (s.withGrad) add('lora.dt', '(N, r)', [N, s.loraR]);
  }
  if (s.withGrad) {
    for (const name of ['dres', 'dtmp', 'dxn']) add(`grad.${name}`, '(N, C)', [N, C]);
    for (const name of ['dq', 'datt']) add(`grad.${name}`, '(N, NH*HD)', [N, QD]);
    for (const name of ['dk', 'dv']) add(`grad.${name}`, '(N, NKV*HD)', [N, KD]);
    for (const name of ['dgate', 'dup', 'dh']) add(`grad.${name}`, '(N, F)', [N, F]);
  }
  return out;
}

const BYTES: Partial<Record<DType, number>> = { f32: 4, i32: 4, bf16: 2, f16: 2 };

export function bufferBytes(b: PlannedBuffer): number {
  return b.shape.reduce((n, d) => n * d, 1) * BYTES[b.dtype]!;
}

/** Bytes per token a pass keeps saved across all layers (the part that grows with layers × tokens). */
export function savedBytesPerToken(cfg: LlamaConfig, s: ActivationSettings): number {
  return activationPlan(cfg, 1, 1, s).filter((b) => b.saved).reduce((n, b) => n + bufferBytes(b), 0);
}

export interface LayerActivations {
  xIn: Tensor; // (N, C) residual stream entering the layer
  rstd1: Tensor; // (N)
  q: Tensor; // (N, NH*HD) after rope
  k: Tensor; // (N, NKV*HD) after rope
  v: Tensor; // (N, NKV*HD)
  att: Tensor; // (N, NH*HD) attention output, before o_proj
  lse: Tensor; // (B, NH, T)
  xMid: Tensor; // (N, C) residual after attention
  rstd2: Tensor; // (N)
  gate: Tensor; // (N, F)
  up: Tensor; // (N, F)
  loraT: Map<Projection, Tensor>; // (N, r) scaled LoRA intermediates
  loraZ: Map<Projection, Tensor>; // (N, out) DoRA's z, training only
}

export interface Activations {
  B: number;
  T: number;
  N: number;
  /** The backward recomputes each layer's forward from its saved xIn. */
  checkpointing: boolean;
  ids: Tensor; // (N) i32
  mask: Tensor; // (B, T) i32
  /** (B, T) i32 segment ids of packed rows (attention keeps them apart; mask unused); null: one sequence per row. */
  segments: Tensor | null;
  targets: Tensor; // (N) i32, labels shifted left, -100 ignored
  cos: Tensor; // (T, HD/2), or (N, HD/2) with segments: one row per token
  sin: Tensor;
  layers: LayerActivations[];
  xn: Tensor; // (N, C) normalized layer input, recomputed in the backward
  h: Tensor; // (N, F) silu(gate) * up, recomputed in the backward
  xOut: Tensor; // (N, C) after the last layer
  rstdF: Tensor;
  xnF: Tensor; // (N, C) final norm output
  losses: Tensor; // (N)
  logits: Tensor; // (headRows, V) one chunk of rows at a time
  headRows: number;
  /** Gradient scratch (N, C | NH*HD | NKV*HD | F); null in a forward-only pass. */
  scratch: {
    dres: Tensor; // (N, C) gradient of the residual stream
    dtmp: Tensor; // (N, C)
    dxn: Tensor; // (N, C)
    dq: Tensor;
    dk: Tensor;
    dv: Tensor;
    datt: Tensor;
    dgate: Tensor;
    dup: Tensor;
    dh: Tensor;
  } | null;
  /** LoRA branch scratch; null without an adapter (dt also null in a forward-only pass). */
  lora: { xd: Tensor; y: Tensor; dt: Tensor | null } | null; // (N, max in), (N, max out), (N, r)
}

/** The Activations of a plan, given its buffers by name (views sized for this B, T). */
export function assembleActivations(cfg: LlamaConfig, B: number, T: number, s: ActivationSettings, get: (name: string) => Tensor): Activations {
  const sets = s.withGrad && !s.checkpointing ? cfg.numLayers : 1;
  const layers: LayerActivations[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    const set = `layers.${l % sets}.`;
    const loraT = new Map<Projection, Tensor>(s.loraTargets.map((p) => [p, get(`${set}lora.${p}`)]));
    const loraZ = new Map<Projection, Tensor>(s.dora && s.withGrad ? s.loraTargets.map((p) => [p, get(`${set}loraZ.${p}`)]) : []);
    const g = (name: string) => get(set + name);
    layers.push({
      xIn: get(`layers.${s.withGrad ? l : 0}.xIn`), rstd1: g('rstd1'), q: g('q'), k: g('k'), v: g('v'), att: g('att'), lse: g('lse'),
      xMid: g('xMid'), rstd2: g('rstd2'), gate: g('gate'), up: g('up'), loraT, loraZ,
    });
  }
  const N = B * T;
  return {
    B, T, N, checkpointing: s.withGrad && s.checkpointing,
    ids: get('ids'), mask: get('mask'), segments: s.packed ? get('segments') : null, targets: get('targets'), cos: get('cos'), sin: get('sin'), layers,
    xn: get('xn'), h: get('h'), xOut: get('xOut'), rstdF: get('rstdF'), xnF: get('xnF'), losses: get('losses'), logits: get('logits'),
    headRows: Math.min(N, HEAD_CHUNK_ROWS),
    scratch: s.withGrad ? {
      dres: get('grad.dres'), dtmp: get('grad.dtmp'), dxn: get('grad.dxn'), dq: get('grad.dq'), dk: get('grad.dk'), dv: get('grad.dv'),
      datt: get('grad.datt'), dgate: get('grad.dgate'), dup: get('grad.dup'), dh: get('grad.dh'),
    } : null,
    lora: s.loraTargets.length ? { xd: get('lora.xd'), y: get('lora.y'), dt: s.withGrad ? get('lora.dt') : null } : null,
  };
}
