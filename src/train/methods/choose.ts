// The training method a run's options ask for. Today that is LoRA; each method's spec (method.ts) is built here.

import type { FinetuneOptions } from '../finetune-options.ts';
import type { MethodSpec } from '../method.ts';
import { loraMethod } from './lora.ts';

export function chooseMethod(o: FinetuneOptions): MethodSpec {
  return loraMethod({
    lora: { r: o.loraR, alpha: o.loraAlpha, dropout: o.loraDropout, targets: o.loraTargetModules, useRslora: o.useRslora, useDora: o.useDora },
    init: o.loraInit, seed: o.seed, baseModelName: o.baseModel, modulesToSave: o.modulesToSave,
  });
}
