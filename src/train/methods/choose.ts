// The training method a run's options ask for (--finetuning_type): LoRA, full or freeze; each method's spec
// (method.ts) is built here from the options.

import type { AddedToken } from '../../tokenizer/added-tokens.ts';
import type { FinetuneOptions } from '../finetune-options.ts';
import type { MethodSpec } from '../method.ts';
import { fullMethod } from './full.ts';
import { loraMethod } from './lora.ts';

/** `baseDir`: the resolved --base_model folder; `added`: the tokens --new_special_tokens added, saved with every output. */
export function chooseMethod(o: FinetuneOptions, baseDir: string, added: readonly AddedToken[] = []): MethodSpec {
  const spec = methodSpec(o, baseDir, added);
  // a checkpoint records the added tokens, so a resume with other ones is refused by name (none: no key, as before)
  return added.length ? { ...spec, recipe: { ...spec.recipe, new_special_tokens: added.map((t) => t.content).join(',') } } : spec;
}

function methodSpec(o: FinetuneOptions, baseDir: string, added: readonly AddedToken[]): MethodSpec {
  if (o.finetuningType === 'full') return fullMethod({ baseDir, freeze: null, added });
  if (o.finetuningType === 'freeze') return fullMethod({ baseDir, freeze: { layers: o.freezeTrainableLayers, modules: o.freezeTrainableModules }, added });
  return loraMethod({
    lora: { r: o.loraR, alpha: o.loraAlpha, dropout: o.loraDropout, targets: o.loraTargetModules, useRslora: o.useRslora, useDora: o.useDora },
    init: o.loraInit, seed: o.seed, baseModelName: o.baseModel, modulesToSave: o.modulesToSave, loraplusLrRatio: o.loraplusLrRatio,
    tokenizer: added.length ? { baseDir, added } : null,
  });
}
