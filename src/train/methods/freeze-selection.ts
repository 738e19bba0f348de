// Which weights freeze fine-tuning trains, as LLaMA-Factory's finetuning_type freeze chooses them: the last N
// decoder layers (N > 0) or the first |N| (N < 0), all of each chosen layer or only the named modules.

import { UserError } from '../../errors.ts';

/** The modules of a decoder layer --freeze_trainable_modules may name (LLaMA-Factory's names); "all" takes every one. */
export const FREEZE_MODULES = ['self_attn', 'mlp', 'input_layernorm', 'post_attention_layernorm'] as const;

/** The trainable layer indices: the last n when n > 0, the first -n when n < 0 (clamped to the model's layers). */
export function trainableLayerIds(numLayers: number, n: number): number[] {
  return n > 0
    ? Array.from({ length: Math.min(n, numLayers) }, (_, i) => numLayers - Math.min(n, numLayers) + i)
    : Array.from({ length: Math.min(-n, numLayers) }, (_, i) => i);
}

/** Refuses a module name that is not a decoder layer's, naming the flag. */
export function checkFreezeModules(modules: readonly string[]): void {
  if (modules.length === 0) throw new UserError('--freeze_trainable_modules names no module: give all, or some of ' + FREEZE_MODULES.join(', '));
  for (const m of modules) {
    if (m !== 'all' && !(FREEZE_MODULES as readonly string[]).includes(m)) {
      throw new UserError(`--freeze_trainable_modules: "${m}" is not a decoder layer's module: give all, or some of ${FREEZE_MODULES.join(', ')}`);
    }
  }
}

/** A predicate on HF weight names: true for the weights the freeze settings train. */
export function freezeSelection(numLayers: number, layers: number, modules: readonly string[]): (name: string) => boolean {
  const prefixes = trainableLayerIds(numLayers, layers).flatMap((l) =>
    modules.includes('all') ? [`model.layers.${l}.`] : modules.map((m) => `model.layers.${l}.${m}.`));
  return (name) => prefixes.some((p) => name.startsWith(p));
}
