// Moving LoRA weights between the backend and PEFT's tensor naming: build an adapter from a PEFT
// adapter's tensors, and collect an adapter's tensors for writing. File I/O is formats/peft-adapter.ts.

import { peftModuleKey } from '../formats/weight-names.ts';
import type { Model } from './llama.ts';
import type { LlamaConfig } from '../arch/llama-config.ts';
import type { Backend } from '../engine/backend.ts';
import { UserError } from '../errors.ts';
import { toFloat32, type HostTensor } from '../formats/host-tensor.ts';
import { adapterTargets, checkAdapterFitsBase, readAdapterConfig, readPeftAdapter, savedVocabSize, type AdapterConfig, type PeftAdapter } from '../formats/peft-adapter.ts';
import { hasTokenizer, loadTokenizer } from '../tokenizer/load.ts';
import { resizeVocab } from './resize-vocab.ts';
import { createLoraAdapter, isProjection, peftKey, peftMagnitudeKey, PROJECTIONS, type LoraAdapter, type LoraSettings, type Projection } from './lora.ts';

/**
 * The projections a PEFT target_modules list names (e.g. ["q_proj", "v_proj"]); others are an error. "all-linear"
 * (PEFT) or "all" (LLaMA-Factory) alone is every decoder projection (never lm_head).
 */
export function parseTargets(targetModules: readonly string[], source: string): Projection[] {
  if (targetModules.length === 1 && (targetModules[0] === 'all-linear' || targetModules[0] === 'all')) return [...PROJECTIONS];
  const out: Projection[] = [];
  for (const name of targetModules) {
    const short = name.split('.').pop()!;
    if (!isProjection(short)) throw new UserError(`${source}: LoRA target "${name}" is not one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj`);
    if (!out.includes(short)) out.push(short);
  }
  return out;
}

/** Allocates an adapter with `settings` and uploads A, B (and DoRA magnitudes) from PEFT-named tensors (all must be present). */
export function adapterFromTensors(
  be: Backend, config: LlamaConfig, settings: LoraSettings, tensors: ReadonlyMap<string, HostTensor>, source: string,
): LoraAdapter {
  const adapter = createLoraAdapter(be, config, settings);
  adapter.layers.forEach((layer, l) => {
    for (const [p, pair] of layer) {
      for (const which of ['A', 'B'] as const) {
        const key = peftKey(l, p, which);
        const h = tensors.get(key);
        if (!h) throw new UserError(`${source}: missing LoRA tensor ${key}`);
        const dst = which === 'A' ? pair.A : pair.B;
        if (h.shape.join(',') !== dst.shape.join(',')) {
          throw new UserError(`${source}: ${key} has shape [${h.shape}] but the base model needs [${dst.shape}]`);
        }
        be.upload(dst, toFloat32(h));
      }
      if (pair.dora) {
        const key = peftMagnitudeKey(l, p);
        const h = tensors.get(key);
        if (!h) throw new UserError(`${source}: missing DoRA magnitude ${key}`);
        if (h.shape.join(',') !== `${pair.outFeatures}`) throw new UserError(`${source}: ${key} has shape [${h.shape}] but the base model needs [${pair.outFeatures}]`);
        be.upload(pair.dora.magnitude, toFloat32(h));
      }
    }
  });
  return adapter;
}

/** The adapter's A, B (and DoRA magnitudes) as float32 host tensors under PEFT's file keys. */
export async function adapterToTensors(be: Backend, adapter: LoraAdapter): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for (let l = 0; l < adapter.layers.length; l++) {
    for (const [p, pair] of adapter.layers[l]!) {
      out.set(peftKey(l, p, 'A'), { dtype: 'F32', shape: [...pair.A.shape], data: (await be.download(pair.A)) as Float32Array });
      out.set(peftKey(l, p, 'B'), { dtype: 'F32', shape: [...pair.B.shape], data: (await be.download(pair.B)) as Float32Array });
      const m = pair.dora?.magnitude;
      if (m) out.set(peftMagnitudeKey(l, p), { dtype: 'F32', shape: [...m.shape], data: (await be.download(m)) as Float32Array });
    }
  }
  for (const [module, t] of adapter.modules ?? []) out.set(peftModuleKey(module), { dtype: 'F32', shape: [...t.shape], data: (await be.download(t)) as Float32Array });
  return out;
}

/** Uploads the modules_to_save copies saved in a PEFT adapter folder's tensors into the adapter's trained ones. */
export function loadModuleCopies(be: Backend, adapter: LoraAdapter, tensors: ReadonlyMap<string, HostTensor>, source: string): void {
  for (const [module, t] of adapter.modules ?? []) {
    const saved = tensors.get(peftModuleKey(module));
    if (!saved) throw new UserError(`${source} has no ${peftModuleKey(module)}, but this run trains modules_to_save ${module}: pass the same --modules_to_save`);
    if (saved.shape.join() !== t.shape.join()) {
      throw new UserError(`${source}: ${peftModuleKey(module)} has shape [${saved.shape}], but this run's is [${t.shape}]: pass the same --new_special_tokens as the run that saved it`);
    }
    be.upload(t, toFloat32(saved));
  }
}

/** LoRA settings of a PEFT adapter_config.json (dropout as stored; callers zero it for evaluation). */
export function settingsFromConfig(c: AdapterConfig, numLayers: number): LoraSettings {
  const selected = adapterTargets(c, numLayers);
  const targets = [...new Set(selected.map((t) => t.projection))];
  return {
    r: c.r, alpha: c.loraAlpha, dropout: c.loraDropout, targets, useRslora: c.useRslora, layersToTransform: c.layersToTransform, useDora: c.useDora,
  };
}

/**
 * The vocabulary an adapter folder needs on `config`'s base: its modules_to_save rows when it has copies (more
 * than the base's after --new_special_tokens), else the base's. A tokenizer saved beside it must not hold more
 * tokens than that (the copies may have more rows, padded).
 */
export function adapterVocabSize(peft: PeftAdapter, config: LlamaConfig, dir: string): number {
  checkAdapterFitsBase(peft, config, dir);
  const size = savedVocabSize(peft, dir) ?? config.vocabSize;
  if (hasTokenizer(dir)) {
    const tokenizer = loadTokenizer(dir);
    if (tokenizer.vocabSize > size) {
      throw new UserError(`${tokenizer.source} has ${tokenizer.vocabSize} tokens but the adapter's weights in ${dir} cover ${size}: the tokenizer and adapter_model.safetensors come from different runs`);
    }
  }
  return size;
}

/**
 * Reads a PEFT adapter folder, checks it fits `m`, grows m's vocabulary to the adapter's when tokens were added
 * in training, replaces m's modules by the adapter's modules_to_save copies (PEFT's merge of them: the module is
 * swapped, not added to), and uploads the LoRA weights.
 */
export async function loadAdapterOnto(m: Model, dir: string): Promise<LoraAdapter> {
  const peft = readPeftAdapter(dir);
  await resizeVocab(m, adapterVocabSize(peft, m.config, dir));
  for (const module of peft.config.modulesToSave) {
    const target = module === 'embed_tokens' ? m.weights.embed : m.weights.lmHead;
    m.be.upload(target, toFloat32(peft.tensors.get(peftModuleKey(module))!));
  }
  return adapterFromTensors(m.be, m.config, settingsFromConfig(peft.config, m.config.numLayers), peft.tensors, dir);
}

/** Whether the adapter folder's adapter_config.json names modules_to_save (copies that replace base modules: see loadAdapterOnto). */
export function hasModulesToSave(dir: string): boolean {
  return readAdapterConfig(dir).modulesToSave.length > 0;
}

/** Reads a PEFT adapter folder, checks it fits the base config, and uploads it (one with modules_to_save: loadAdapterOnto). */
export function loadLoraAdapter(be: Backend, config: LlamaConfig, dir: string): LoraAdapter {
  const peft = readPeftAdapter(dir);
  checkAdapterFitsBase(peft, config, dir);
  if (peft.config.modulesToSave.length) {
    throw new UserError(`${dir} has modules_to_save (${peft.config.modulesToSave.join(', ')}), which replace the base's modules, so it cannot be one adapter among others: serve it alone (--lora_weights at start), or merge it (alpaca-lora export-hf) and serve the merged folder`);
  }
  return adapterFromTensors(be, config, settingsFromConfig(peft.config, config.numLayers), peft.tensors, dir);
}
