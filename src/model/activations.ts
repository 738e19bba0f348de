// The buffers one forward/backward pass over a (B, T) batch needs, allocated once per shape in the
// 'activations' arena and reused across micro-batches. Saved tensors are per layer; scratch is shared.

import type { Backend } from '../engine/backend.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { LlamaConfig } from './llama-config.ts';
import type { LoraAdapter, Projection } from './lora.ts';

export interface LayerActivations {
  xIn: Tensor; // (N, C) residual stream entering the layer
  rstd1: Tensor; // (N)
  xn1: Tensor; // (N, C) input_layernorm output
  q: Tensor; // (N, NH*HD) after rope
  k: Tensor; // (N, NKV*HD) after rope
  v: Tensor; // (N, NKV*HD)
  att: Tensor; // (N, NH*HD) attention output, before o_proj
  lse: Tensor; // (B, NH, T)
  xMid: Tensor; // (N, C) residual after attention
  rstd2: Tensor;
  xn2: Tensor; // (N, C) post_attention_layernorm output
  gate: Tensor; // (N, F)
  up: Tensor; // (N, F)
  h: Tensor; // (N, F) silu(gate) * up
  loraT: Map<Projection, Tensor>; // (N, r) scaled LoRA intermediates
}

export interface Activations {
  B: number;
  T: number;
  N: number;
  ids: Tensor; // (N) i32
  mask: Tensor; // (B, T) i32
  targets: Tensor; // (N) i32, labels shifted left, -100 ignored
  cos: Tensor; // (T, HD/2)
  sin: Tensor;
  layers: LayerActivations[];
  xOut: Tensor; // (N, C) after the last layer
  rstdF: Tensor;
  xnF: Tensor; // (N, C) final norm output
  losses: Tensor; // (N)
  logits: Tensor; // (headRows, V) one chunk of rows at a time
  headRows: number;
  scratch: {
    dres: Tensor; // (N, C) gradient of the residual stream
    dtmp: Tensor; // (N, max(C, F))
    dxn: Tensor; // (N, C)
    dq: Tensor;
    dk: Tensor;
    dv: Tensor;
    datt: Tensor;
    dgate: Tensor;
    dup: Tensor;
    dh: Tensor;
    loraXd: Tensor; // (N, max in)
    loraY: Tensor; // (N, max out)
    loraDt: Tensor; // (N, r)
    sumSq: Tensor; // (1)
  };
}

/** Rows of logits materialised at once: keeps the (rows, V) chunk near 4M floats. */
export function headChunkRows(N: number, V: number): number {
  return Math.max(1, Math.min(N, Math.floor((1 << 22) / V)));
}

export function allocActivations(be: Backend, config: LlamaConfig, B: number, T: number, adapter: LoraAdapter | null, withGrad: boolean): Activations {
  const N = B * T;
  const C = config.hiddenSize, F = config.intermediateSize, V = config.vocabSize;
  const QD = config.numHeads * config.headDim, KD = config.numKvHeads * config.headDim;
  const f = (...shape: number[]) => be.alloc(shape, 'f32', 'activations');
  const r = adapter?.settings.r ?? 1;
  const layers: LayerActivations[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const loraT = new Map<Projection, Tensor>();
    // every layer gets every target, so the buffers depend only on (targets, r): the cache key in compute.ts
    for (const p of adapter?.settings.targets ?? []) loraT.set(p, f(N, r));
    layers.push({
      xIn: f(N, C), rstd1: f(N), xn1: f(N, C), q: f(N, QD), k: f(N, KD), v: f(N, KD), att: f(N, QD),
      lse: f(B, config.numHeads, T), xMid: f(N, C), rstd2: f(N), xn2: f(N, C), gate: f(N, F), up: f(N, F), h: f(N, F), loraT,
    });
  }
  const headRows = headChunkRows(N, V);
  const wide = Math.max(C, F, QD);
  const g = (...shape: number[]) => (withGrad ? f(...shape) : f(1));
  return {
    B, T, N,
    ids: be.alloc([N], 'i32', 'activations'),
    mask: be.alloc([B, T], 'i32', 'activations'),
    targets: be.alloc([N], 'i32', 'activations'),
    cos: f(T, config.headDim / 2),
    sin: f(T, config.headDim / 2),
    layers,
    xOut: f(N, C), rstdF: f(N), xnF: f(N, C), losses: f(N), logits: f(headRows, V), headRows,
    scratch: {
      dres: g(N, C), dtmp: g(N, wide), dxn: g(N, C), dq: g(N, QD), dk: g(N, KD), dv: g(N, KD), datt: g(N, QD),
      dgate: g(N, F), dup: g(N, F), dh: g(N, F),
      loraXd: f(N, wide), loraY: f(N, wide), loraDt: f(N, r), sumSq: f(1),
    },
  };
}
