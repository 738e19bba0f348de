// A PEFT LoRA adapter held on the host for merging and export: per adapted weight (by its HF name) the
// float32 A (r, in), B (out, r), DoRA's magnitude (out) and the scaling, and the merge W' = W + scaling * B A
// (DoRA: m / ||W + s B A|| * (W + s B A) per row). Not the engine's LoraAdapter (model/lora.ts), which lives on
// a backend for training.

import type { LlamaConfig } from '../arch/llama-config.ts';
import { PROJECTION_INFO, projectionFeatures, type Projection } from '../arch/projections.ts';
import { toFloat32, type HostTensor } from '../formats/host-tensor.ts';
import { adapterTargets, readPeftAdapter, savedVocabSize, type AdapterConfig, type PeftAdapter } from '../formats/peft-adapter.ts';
import { adapterVocabSize } from '../model/lora-io.ts';
import { MODULES_TO_SAVE, peftKey, peftMagnitudeKey, peftModuleKey } from '../formats/weight-names.ts';
import { mergeDoraRows } from '../model/dora.ts';
import { loraDelta, loraScaling } from '../model/lora.ts';

export interface HostLoraPair {
  layer: number;
  projection: Projection;
  A: Float32Array; // (r, in)
  B: Float32Array; // (out, r)
  magnitude: Float32Array | null; // (out) with DoRA
  inFeatures: number;
  outFeatures: number;
}

export interface HostLora {
  config: AdapterConfig;
  r: number;
  scaling: number;
  /** Keyed by the adapted weight's HF name, e.g. model.layers.0.self_attn.q_proj.weight. */
  pairs: ReadonlyMap<string, HostLoraPair>;
  /** modules_to_save copies by the HF name of the weight they replace (model.embed_tokens.weight, lm_head.weight). */
  modules: ReadonlyMap<string, HostTensor>;
  /** The vocabulary the adapter needs: more than the base's when tokens were added in training (model/lora-io.ts adapterVocabSize). */
  vocabSize: number;
}

/** The HF name of a projection's weight. */
export function projectionWeightName(layer: number, projection: Projection): string {
  return `model.layers.${layer}.${PROJECTION_INFO[projection].block}.${projection}.weight`;
}

/** Reads a PEFT adapter folder and checks that it fits `config`. */
export function readHostLora(dir: string, config: LlamaConfig): HostLora {
  const peft = readPeftAdapter(dir);
  return { ...hostLoraFromPeft(peft, config), vocabSize: adapterVocabSize(peft, config, dir) };
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
      magnitude: peft.config.useDora ? toFloat32(peft.tensors.get(peftMagnitudeKey(layer, projection))!) : null,
      inFeatures,
      outFeatures,
    });
  }
  const scaling = loraScaling({ r: peft.config.r, alpha: peft.config.loraAlpha, useRslora: peft.config.useRslora });
  const modules = new Map(peft.config.modulesToSave.map((m) => [MODULES_TO_SAVE[m] as string, peft.tensors.get(peftModuleKey(m))!]));
  return { config: peft.config, r: peft.config.r, scaling, pairs, modules, vocabSize: savedVocabSize(peft) ?? config.vocabSize };
}

/** The base weight w (out, in, float32) with the pair merged in, in place. */
export function mergePair(lora: HostLora, pair: HostLoraPair, w: Float32Array): void {
  const delta = loraDelta(pair.A, pair.B, lora.r, pair.inFeatures, pair.outFeatures, lora.scaling);
  if (pair.magnitude) return mergeDoraRows(w, delta, pair.magnitude, pair.outFeatures, pair.inFeatures);
  for (let i = 0; i < w.length; i++) w[i]! += delta[i]!;
}
