// LoRA weights in and out of folders for training: the adapter a resume or load_best_model_at_end reads,
// which must have this run's rank and targets. Writing the final adapter is save-adapter.ts.

import type { Backend } from '../../engine/backend.ts';
import { UserError } from '../../errors.ts';
import { checkAdapterFitsBase, readPeftAdapter } from '../../formats/peft-adapter.ts';
import type { LlamaConfig } from '../../arch/llama-config.ts';
import { adapterFromTensors, loadModuleCopies, settingsFromConfig } from '../../model/lora-io.ts';
import type { LoraAdapter, LoraSettings } from '../../model/lora.ts';

/** The adapter stored in `dir`, uploaded; it must have this run's rank and targets. */
export function loadAdapterFor(be: Backend, config: LlamaConfig, dir: string, wanted: LoraSettings): LoraAdapter {
  const peft = readPeftAdapter(dir);
  checkAdapterFitsBase(peft, config, dir);
  const saved = settingsFromConfig(peft.config, config.numLayers);
  const targets = (s: LoraSettings) => [...s.targets].sort().join(',');
  if (!!saved.useDora !== !!wanted.useDora) {
    throw new UserError(`${dir} holds a ${saved.useDora ? 'DoRA' : 'LoRA'} adapter, but this run trains ${wanted.useDora ? 'DoRA' : 'LoRA'}: ${saved.useDora ? 'pass' : 'drop'} --use_dora`);
  }
  if (saved.r !== wanted.r || targets(saved) !== targets(wanted) || (saved.layersToTransform ?? null) !== null) {
    throw new UserError(
      `${dir} holds a LoRA of rank ${saved.r} on [${saved.targets}], but this run trains rank ${wanted.r} on [${wanted.targets}]: ` +
        'pass the same --lora_r and --lora_target_modules',
    );
  }
  return adapterFromTensors(be, config, wanted, peft.tensors, dir);
}

/** The modules_to_save copies stored in `dir`, into the adapter's trained ones (resume, load_best_model_at_end). */
export function loadModulesFor(be: Backend, adapter: LoraAdapter, dir: string): void {
  if (adapter.modules?.size) loadModuleCopies(be, adapter, readPeftAdapter(dir).tensors, dir);
}

/** Replaces the adapter's A and B (and DoRA magnitudes) by those saved in `dir` (load_best_model_at_end). */
export function replaceAdapterWeights(be: Backend, config: LlamaConfig, adapter: LoraAdapter, dir: string, wanted: LoraSettings): void {
  const saved = loadAdapterFor(be, config, dir, wanted);
  loadModulesFor(be, adapter, dir);
  adapter.layers.forEach((layer, l) => {
    for (const [p, pair] of layer) {
      const from = saved.layers[l]!.get(p)!;
      be.copy(pair.A, from.A);
      be.copy(pair.B, from.B);
      if (pair.dora) be.copy(pair.dora.magnitude, from.dora!.magnitude);
    }
  });
  for (const layer of saved.layers) {
    for (const pair of layer.values()) {
      for (const t of [pair.A, pair.B, pair.dA, pair.dB]) be.free(t);
      if (pair.dora) for (const t of [pair.dora.magnitude, pair.dora.dMagnitude, pair.dora.scale, pair.dora.invNorm]) be.free(t);
    }
  }
}
