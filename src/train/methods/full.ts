// Full and freeze fine-tuning as training methods: the chosen base weights (all, or freeze's selection) become
// float32 masters with gradients and AdamW moments; the forward and backward run the base alone; checkpoints and
// the final output are Hugging Face model folders (model-folder.ts), so the output is itself a --base_model.

import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { forwardBackward, reserveActivations, scoreBatch } from '../../model/compute.ts';
import { enableFullFinetune } from '../../model/full-finetune.ts';
import type { Model } from '../../model/llama.ts';
import type { AddedToken } from '../../tokenizer/added-tokens.ts';
import type { MethodSettings, MethodSpec, TrainingMethod } from '../method.ts';
import { loadModelFolder, verifyModelFolder, writeModelFolder } from './model-folder.ts';
import { freezeSelection } from './freeze-selection.ts';
import { baseParameterCount } from './parameter-count.ts';

export interface FullMethodOptions {
  /** The base model's folder: config.json, tokenizer files, and the frozen weights copied into every save. */
  baseDir: string;
  /** null: every weight trains (full); else freeze's choice of layers and modules. */
  freeze: { layers: number; modules: readonly string[] } | null;
  /** --new_special_tokens: saved in the tokenizer files of every output; with freeze, embed_tokens and lm_head train too. */
  added?: readonly AddedToken[];
}

const VOCAB_WEIGHTS = ['model.embed_tokens.weight', 'lm_head.weight'];

export function fullMethod(o: FullMethodOptions): MethodSpec {
  const f = o.freeze;
  const settings: MethodSettings = f
    ? { finetuning_type: 'freeze', freeze_trainable_layers: f.layers, freeze_trainable_modules: f.modules.join(',') }
    : { finetuning_type: 'full' };
  return {
    description: f ? `freeze: the ${f.layers > 0 ? `last ${f.layers}` : `first ${-f.layers}`} layers' ${f.modules.join(', ')} train` : 'full fine-tuning: every weight trains',
    settings,
    recipe: settings,
    create: (model, from) => createFull(model, o, from),
  };
}

async function createFull(model: Model, o: FullMethodOptions, from: string | null): Promise<TrainingMethod> {
  const { be, config } = model;
  const all = baseParameterCount(model);
  const added = o.added ?? [];
  const selected = o.freeze && freezeSelection(config.numLayers, o.freeze.layers, o.freeze.modules);
  const params = enableFullFinetune(model, selected ? (name) => selected(name) || (added.length > 0 && VOCAB_WEIGHTS.includes(name)) : undefined);
  if (from) await loadModelFolder(be, params, from);
  const trainable = params.reduce((n, p) => n + p.param.size, 0);
  const writeChecked = async (dir: string) => {
    const files = await writeModelFolder(be, config, o.baseDir, params, o.freeze === null, dir, added);
    await verifyModelFolder(be, params, dir);
    return files;
  };
  return {
    params,
    generationAdapter: null,
    parameterCounts: () => ({ trainable, all }),
    reserve: (B, T, memory) => reserveActivations(model, B, T, null, memory),
    zeroGrads: () => params.forEach((p) => be.fill(p.grad, 0)),
    forwardBackward: (batch, _seed, gradScale) => forwardBackward(model, batch, null, gradScale),
    score: (batch) => scoreBatch(model, batch, null),
    writeCheckpoint: async (dir) => {
      await writeChecked(dir);
    },
    loadCheckpoint: (dir) => loadModelFolder(be, params, dir),
    saveFinal: async (dir) => {
      const tmp = join(dir, `.model.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
      await mkdir(tmp);
      try {
        const files = await writeChecked(tmp);
        for (const name of files) await rename(join(tmp, name), join(dir, name));
        return `the model to ${dir} (${files.join(', ')}; verified)`;
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    },
  };
}
