// PEFT's modules_to_save for training: the embedding and/or the LM head become trainable full copies (float32
// masters with gradients) that the model uses in place of its own; the optimizer steps them and the adapter
// saves them under PEFT's keys. Not loading a saved adapter's copies (lora-io.ts loadAdapterOnto).

import type { Tensor } from '../engine/tensor.ts';
import { UserError } from '../errors.ts';
import { peftModuleKey, type ModuleToSave } from '../formats/weight-names.ts';
import type { TrainableParam } from '../train/optimizer.ts';
import { makeTrainable } from './full-finetune.ts';
import type { Model } from './llama.ts';

/** Makes each named module a trainable copy; returns them named by PEFT's file keys, in the order given. */
export function enableModulesToSave(m: Model, modules: readonly ModuleToSave[]): TrainableParam[] {
  const { be, weights: w } = m;
  if (modules.length && w.lmHead === w.embed) {
    throw new UserError('--modules_to_save on a base whose lm_head is its embedding (tie_word_embeddings) is not supported: train without it');
  }
  return modules.map((module) => {
    const t: Tensor = module === 'embed_tokens' ? w.embed : w.lmHead;
    const { param, grad } = makeTrainable(be, t);
    if (module === 'embed_tokens') {
      w.embed = param;
      w.dEmbed = grad;
    } else {
      w.lmHead = param;
      w.dLmHead = grad;
    }
    return { name: peftModuleKey(module), param, grad };
  });
}
