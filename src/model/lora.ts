// LoRA adapters: h = W x + scaling * B A dropout(x), with A (r, in) and B (out, r) as PEFT lays them out;
// with DoRA, also a magnitude vector m (out) per projection (dora.ts has its math).
// Holds the float32 master weights and their gradients on the backend; init, merge and PEFT naming.
// Not the forward math (see linear.ts) and not file I/O (see formats/peft-adapter.ts).

import type { LlamaConfig } from '../arch/llama-config.ts';
import { projectionFeatures, PROJECTIONS, type Projection } from '../arch/projections.ts';
import type { Backend } from '../engine/backend.ts';
import { Rng } from '../engine/random.ts';
import type { Tensor } from '../engine/tensor.ts';
import { peftKey, peftMagnitudeKey, type ModuleToSave } from '../formats/weight-names.ts';

export { peftKey, peftMagnitudeKey, PROJECTIONS, type Projection };

export interface LoraSettings {
  r: number;
  alpha: number;
  dropout: number;
  targets: Projection[];
  useRslora: boolean;
  /** Only these layers carry LoRA (PEFT's layers_to_transform); null = all. */
  layersToTransform?: readonly number[] | null;
  /** DoRA (PEFT's use_dora): each projection also trains a magnitude vector. */
  useDora?: boolean;
}

/** DoRA's per-projection state: W' = m * (W + s B A) / ||W + s B A|| with the norm taken per output row. */
export interface DoraState {
  readonly magnitude: Tensor; // (out) f32, PEFT's lora_magnitude_vector
  readonly dMagnitude: Tensor; // (out) gradient, accumulated
  /** (out) m / ||W + s B A|| and 1 / ||W + s B A||: the norm is a constant of the pass (dora.ts refreshes both). */
  readonly scale: Tensor;
  readonly invNorm: Tensor;
  /** ||W||^2 per output row of the frozen base weight, computed on first use (host, float64). */
  baseNormSq: Float64Array | null;
}

export interface LoraPair {
  readonly A: Tensor; // (r, in) f32
  readonly B: Tensor; // (out, r) f32
  readonly dA: Tensor; // gradients, accumulated
  readonly dB: Tensor;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly dora: DoraState | null;
}

export interface LoraAdapter {
  readonly settings: LoraSettings;
  readonly scaling: number;
  /** layers[i].get(projection) */
  readonly layers: ReadonlyArray<ReadonlyMap<Projection, LoraPair>>;
  /** PEFT's modules_to_save being trained: the model's own (trainable copy) tensors, saved with the adapter. */
  readonly modules?: ReadonlyMap<ModuleToSave, Tensor>;
}

export function loraScaling(s: Pick<LoraSettings, 'r' | 'alpha' | 'useRslora'>): number {
  return s.useRslora ? s.alpha / Math.sqrt(s.r) : s.alpha / s.r;
}

export function isProjection(name: string): name is Projection {
  return (PROJECTIONS as readonly string[]).includes(name);
}

/** Allocates A, B and their gradients (zeros) for every target of every layer. */
export function createLoraAdapter(be: Backend, config: LlamaConfig, settings: LoraSettings): LoraAdapter {
  const layers: Map<Projection, LoraPair>[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const map = new Map<Projection, LoraPair>();
    const targets = settings.layersToTransform && !settings.layersToTransform.includes(i) ? [] : settings.targets;
    for (const p of targets) {
      const { inFeatures, outFeatures } = projectionFeatures(config, p);
      const pair: LoraPair = {
        A: be.alloc([settings.r, inFeatures], 'f32', 'adapters'),
        B: be.alloc([outFeatures, settings.r], 'f32', 'adapters'),
        dA: be.alloc([settings.r, inFeatures], 'f32', 'grads'),
        dB: be.alloc([outFeatures, settings.r], 'f32', 'grads'),
        inFeatures,
        outFeatures,
        dora: settings.useDora ? createDoraState(be, outFeatures) : null,
      };
      for (const t of [pair.A, pair.B, pair.dA, pair.dB]) be.fill(t, 0);
      map.set(p, pair);
    }
    layers.push(map);
  }
  return { settings, scaling: loraScaling(settings), layers };
}

function createDoraState(be: Backend, outFeatures: number): DoraState {
  const state: DoraState = {
    magnitude: be.alloc([outFeatures], 'f32', 'adapters'),
    dMagnitude: be.alloc([outFeatures], 'f32', 'grads'),
    scale: be.alloc([outFeatures], 'f32', 'adapters'),
    invNorm: be.alloc([outFeatures], 'f32', 'adapters'),
    baseNormSq: null,
  };
  for (const t of [state.magnitude, state.dMagnitude, state.scale, state.invNorm]) be.fill(t, 0);
  return state;
}

export type LoraInit = 'kaiming' | 'gaussian';

/**
 * PEFT's default init: A ~ kaiming_uniform(a = sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)); B = 0.
 * 'gaussian': A ~ N(0, 1/r) (PEFT's init_lora_weights="gaussian"), B = 0.
 */
export function initLoraAdapter(be: Backend, adapter: LoraAdapter, init: LoraInit, seed: number): void {
  const rng = new Rng(seed);
  for (const layer of adapter.layers) {
    for (const pair of layer.values()) {
      const a = new Float32Array(pair.A.size);
      if (init === 'kaiming') {
        const bound = 1 / Math.sqrt(pair.inFeatures);
        for (let i = 0; i < a.length; i++) a[i] = (rng.next() * 2 - 1) * bound;
      } else {
        const std = 1 / adapter.settings.r;
        for (let i = 0; i < a.length; i++) a[i] = rng.normal() * std;
      }
      be.upload(pair.A, a);
      be.fill(pair.B, 0);
    }
  }
}

/** Every trainable tensor with its gradient, in a fixed order (layer, projection, A, B, then DoRA's magnitude). */
export function loraParameters(adapter: LoraAdapter): { name: string; param: Tensor; grad: Tensor }[] {
  const out: { name: string; param: Tensor; grad: Tensor }[] = [];
  adapter.layers.forEach((layer, i) => {
    for (const [p, pair] of layer) {
      out.push({ name: peftKey(i, p, 'A'), param: pair.A, grad: pair.dA });
      out.push({ name: peftKey(i, p, 'B'), param: pair.B, grad: pair.dB });
      if (pair.dora) out.push({ name: peftMagnitudeKey(i, p), param: pair.dora.magnitude, grad: pair.dora.dMagnitude });
    }
  });
  return out;
}

export function zeroLoraGrads(be: Backend, adapter: LoraAdapter): void {
  for (const layer of adapter.layers) for (const pair of layer.values()) {
    be.fill(pair.dA, 0);
    be.fill(pair.dB, 0);
    if (pair.dora) be.fill(pair.dora.dMagnitude, 0);
  }
}

/** Host-side delta W = scaling * B (out, r) @ A (r, in), as float32 (out, in). */
export function loraDelta(A: Float32Array, B: Float32Array, r: number, inFeatures: number, outFeatures: number, scaling: number): Float32Array {
  const delta = new Float32Array(outFeatures * inFeatures);
  for (let o = 0; o < outFeatures; o++) {
    for (let k = 0; k < r; k++) {
      const b = B[o * r + k]! * scaling;
      if (b === 0) continue;
      const row = o * inFeatures, arow = k * inFeatures;
      for (let c = 0; c < inFeatures; c++) delta[row + c]! += b * A[arow + c]!;
    }
  }
  return delta;
}

/** Frees the adapter's weights and gradients (an adapter unloaded by a server). */
export function freeLoraAdapter(be: Backend, adapter: LoraAdapter): void {
  for (const layer of adapter.layers) for (const pair of layer.values()) for (const t of [pair.A, pair.B, pair.dA, pair.dB]) be.free(t);
}
