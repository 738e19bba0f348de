// LoRA as a training method: the adapter's A and B (and DoRA's magnitudes) are the trainable tensors, the forward and backward run the
// base with the adapter (dropout on), checkpoints and the final output are PEFT adapter folders, verified after
// writing. Not the adapter's math (model/lora.ts, model/linear.ts) nor the PEFT file format (formats/).

import { UserError } from '../../errors.ts';
import { makeAdapterConfig, writePeftAdapter } from '../../formats/peft-adapter.ts';
import { forwardBackward, reserveActivations, scoreBatch } from '../../model/compute.ts';
import { initDoraMagnitude } from '../../model/dora.ts';
import { enableModulesToSave } from '../../model/modules-to-save.ts';
import type { ModuleToSave } from '../../formats/weight-names.ts';
import { writeTokenizerFilesWith, type AddedToken } from '../../tokenizer/added-tokens.ts';
import type { Model } from '../../model/llama.ts';
import { adapterToTensors } from '../../model/lora-io.ts';
import { createLoraAdapter, initLoraAdapter, loraParameters, zeroLoraGrads, type LoraAdapter, type LoraInit, type LoraSettings } from '../../model/lora.ts';
import type { MethodSpec, TrainingMethod } from '../method.ts';
import { loadAdapterFor, loadModulesFor, replaceAdapterWeights } from './lora-weights.ts';
import { loraPlusGroups } from './loraplus.ts';
import { baseParameterCount } from './parameter-count.ts';
import { saveVerifiedAdapter } from './save-adapter.ts';
import { verifySavedAdapter } from './verify-adapter.ts';

export interface LoraMethodOptions {
  lora: LoraSettings;
  /** How a new adapter's A is drawn (B starts at 0), from `seed`. */
  init: LoraInit;
  seed: number;
  /** adapter_config.json's base_model_name_or_path. */
  baseModelName: string;
  /** PEFT's modules_to_save: full copies of these modules train beside the adapter. */
  modulesToSave?: readonly ModuleToSave[];
  /** LoRA+: B matrices at this multiple of the learning rate (loraplus.ts); null: one rate for all. */
  loraplusLrRatio: number | null;
  /** --new_special_tokens: the base's tokenizer files with these tokens are saved beside every adapter. */
  tokenizer?: { baseDir: string; added: readonly AddedToken[] } | null;
}

export function loraMethod(o: LoraMethodOptions): MethodSpec {
  const s = o.lora;
  return {
    description: `${s.useDora ? 'DoRA' : 'LoRA'} r=${s.r}, alpha=${s.alpha}${s.useRslora ? ' (rsLoRA)' : ''}, dropout ${s.dropout} on ${s.targets.join(', ')}` +
      (o.loraplusLrRatio === null ? '' : `; LoRA+ B at ${o.loraplusLrRatio} x lr`),
    settings: {
      lora_r: s.r, lora_alpha: s.alpha, lora_dropout: s.dropout, lora_target_modules: `[${s.targets.join(', ')}]`, use_rslora: s.useRslora, use_dora: s.useDora ?? false, lora_init: o.init,
      modules_to_save: `[${(o.modulesToSave ?? []).join(', ')}]`,
      ...(o.loraplusLrRatio === null ? {} : { loraplus_lr_ratio: o.loraplusLrRatio }),
    },
    recipe: {
      lora_r: s.r, lora_alpha: s.alpha, lora_dropout: s.dropout, lora_target_modules: s.targets.join(','), use_rslora: s.useRslora, use_dora: s.useDora ?? false,
      modules_to_save: (o.modulesToSave ?? []).join(','),
      ...(o.loraplusLrRatio === null ? {} : { loraplus_lr_ratio: o.loraplusLrRatio }),
    },
    create: async (model, from) => createLora(model, o, from),
  };
}

function createLora(model: Model, o: LoraMethodOptions, from: string | null): TrainingMethod {
  const { be, config } = model;
  const s = o.lora;
  if (s.useDora) checkDoraBase(model, s);
  let adapter: LoraAdapter;
  // PEFT sets a new DoRA magnitude to ||W + s B A|| at the first forward; so does `ready` (it reads the weights)
  let ready = async () => {};
  if (from) {
    adapter = loadAdapterFor(be, config, from, s);
  } else {
    adapter = createLoraAdapter(be, config, s);
    initLoraAdapter(be, adapter, o.init, o.seed);
    if (s.useDora) {
      ready = async () => {
        ready = async () => {};
        await initDoraMagnitude(model, adapter);
      };
    }
  }
  const modules = o.modulesToSave ?? [];
  const moduleParams = enableModulesToSave(model, modules);
  adapter = { ...adapter, modules: new Map(modules.map((m, i) => [m, moduleParams[i]!.param])) };
  if (from) loadModulesFor(be, adapter, from);
  const adapterConfig = makeAdapterConfig({
    r: s.r, loraAlpha: s.alpha, loraDropout: s.dropout, targetModules: s.targets, useRslora: s.useRslora, useDora: s.useDora, modulesToSave: modules,
    baseModelNameOrPath: o.baseModelName,
  });
  const all = [...loraParameters(adapter), ...moduleParams];
  const params = o.loraplusLrRatio === null ? all : loraPlusGroups(all, o.loraplusLrRatio);
  const trainable = params.reduce((n, p) => n + p.param.size, 0);
  const training = (seed: number) => ({ adapter, dropout: s.dropout, seed });
  const saveTokenizer = async (dir: string) => (o.tokenizer ? writeTokenizerFilesWith(o.tokenizer.baseDir, dir, o.tokenizer.added) : []);
  const evaluation = { adapter, dropout: 0, seed: 0 };
  return {
    params,
    generationAdapter: adapter,
    parameterCounts: () => ({ trainable, all: baseParameterCount(model) + trainable - moduleParams.reduce((n, p) => n + p.param.size, 0) }), // copies replace their modules
    reserve: (B, T, memory) => reserveActivations(model, B, T, training(0), memory),
    zeroGrads: () => {
      zeroLoraGrads(be, adapter);
      for (const p of moduleParams) be.fill(p.grad, 0);
    },
    forwardBackward: async (batch, seed, gradScale) => {
      await ready();
      return forwardBackward(model, batch, training(seed), gradScale);
    },
    score: async (batch) => {
      await ready();
      return scoreBatch(model, batch, evaluation);
    },
    writeCheckpoint: async (dir, check) => {
      await ready();
      await writePeftAdapter(dir, adapterConfig, await adapterToTensors(be, adapter));
      await verifySavedAdapter(model, adapter, dir, check.probe, check.trained);
      await saveTokenizer(dir);
    },
    loadCheckpoint: async (dir) => replaceAdapterWeights(be, config, adapter, dir, s),
    saveFinal: async (dir, check) => {
      await ready();
      await saveVerifiedAdapter(model, adapter, adapterConfig, dir, check.probe, check.trained);
      const tokenizerFiles = await saveTokenizer(dir);
      return `the adapter to ${dir} (adapter_config.json, adapter_model.safetensors${tokenizerFiles.length ? `, ${tokenizerFiles.join(', ')}` : ''}; verified)`;
    },
  };
}

/** DoRA's weight norm needs the base's exact values: an 8-bit (LLM.int8) base is refused before training starts. */
function checkDoraBase(model: Model, s: LoraSettings): void {
  const int8 = model.weights.layers.some((layer) => s.targets.some((p) => layer.proj[p].weight.dtype === 'int8'));
  if (int8) throw new UserError('--use_dora needs the base weights\' exact values for its weight norm, which an 8-bit (LLM.int8) base does not give: load the base in 4 bits (--load_in_4bit) or unquantized');
}
