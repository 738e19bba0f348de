// A PEFT LoRA adapter held on the host for merging and export: per adapted weight (by its HF name) the
// float32 A (r, in) and B (out, r) and the scaling, and the delta W' - W = scaling * B A. Not the engine's
// LoraAdapter (model/lora.ts), which lives on a backend for training.

import type { LlamaConfig } from '../arch/llama-config.ts';
import { PROJECTION_INFO, projectionFeatures, type Projection } from '../arch/projections.ts';
import { toFloat32 } from '../formats/host-tensor.ts';
import { adapterTargets, checkAdapterFitsBase, readPeftAdapter, type AdapterConfig, type PeftAdapter } from '../formats/peft-adapter.ts';
import { peftKey } from '../formats/weight-names.ts';
import { loraDelta, loraScaling } from '../model/lora.ts';

export interface HostLoraPair {
  layer: number;
  projection: Projection;
  A: Float32Array; // (r, in)
  B: Float32Array; // (out, r)
  inFeatures: number;
  outFeatures: number;
}

export interface HostLora {
  config: AdapterConfig;
  r: number;
  scaling: number;
  /** Keyed by the adapted weight's HF name, e.g. model.layers.0.self_attn.q_proj.weight. */
  pairs: ReadonlyMap<string, HostLoraPair>;
}

/** The HF name of a projection's weight. */
export function projectionWeightName(layer: number, projection: Projection): string {
  return `model.layers.${layer}.${PROJECTION_INFO[projection].block}.${projection}.weight`;
}

/** Reads a PEFT adapter folder and checks that it fits `config`. */
export function readHostLora(dir: string, config: LlamaConfig): HostLora {
  const peft = readPeftAdapter(dir);
  checkAdapterFitsBase(peft, config, dir);
  return hostLoraFromPeft(peft, config);
}

/** An adapter already checked against `config` (see checkAdapterFitsBase). */
export function hostLoraFromPeft(peft: PeftAdapter, config: LlamaConfig): HostLora {
  const pairs = new Map<string, HostLoraPair>();
  for (const { layer, projection } of adapterTargets(peft.config, config.numLayers)) {
    const { inFeatures, outFeatures } = projectionFeatures(config, projection);
    pairs.set(projectionWeightName(layer, projection), {
      layer,
      projection,
      A: toFloat32(peft.tensors.get(peftKey(layer, projection, 'A'))!),
      B: toFloat32(peft.tensors.get(peftKey(layer, projection, 'B'))!),
      inFeatures,
      outFeatures,
    });
  }
  const scaling = loraScaling({ r: peft.config.r, alpha: peft.config.loraAlpha, useRslora: peft.config.useRslora });
  return { config: peft.config, r: peft.config.r, scaling, pairs };
}

/** scaling * B A as float32 (out, in). */
export function pairDelta(lora: HostLora, pair: HostLoraPair): Float32Array {
  return loraDelta(pair.A, pair.B, lora.r, pair.inFeatures, pair.outFeatures, lora.scaling);
}
