// --resume_from_checkpoint: find what the path holds (a checkpoint, a folder of checkpoints, or a bare PEFT
// adapter), and bring a checkpoint's adapter, optimizer moments, step and run history back.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../engine/backend.ts';
import { UserError } from '../errors.ts';
import { checkAdapterFitsBase, readPeftAdapter } from '../formats/peft-adapter.ts';
import type { LlamaConfig } from '../model/llama-config.ts';
import { adapterFromTensors, settingsFromConfig } from '../model/lora-io.ts';
import type { LoraAdapter, LoraSettings } from '../model/lora.ts';
import { isCheckpoint, listCheckpoints, readCheckpoint } from './checkpoint.ts';
import type { RunState } from './loop.ts';
import { restoreOptimizer } from './optimizer-state.ts';
import { checkSameRecipe, type Recipe } from './recipe.ts';
import type { Trainer } from './trainer.ts';

export type ResumePoint = { kind: 'checkpoint'; dir: string } | { kind: 'adapter'; dir: string };

export function locateResume(path: string): ResumePoint {
  const flag = `--resume_from_checkpoint ${path}`;
  if (!existsSync(path)) throw new UserError(`${flag} does not exist`);
  if (isCheckpoint(path)) return { kind: 'checkpoint', dir: path };
  const latest = listCheckpoints(path).at(-1);
  if (latest) return { kind: 'checkpoint', dir: latest.dir };
  if (existsSync(join(path, 'adapter_config.json'))) return { kind: 'adapter', dir: path };
  throw new UserError(
    `${flag} is neither a checkpoint (trainer_state.json + optimizer.safetensors), a folder of checkpoint-N folders, ` +
      'nor a PEFT adapter (adapter_config.json + adapter_model.safetensors)',
  );
}

/** The adapter stored in `dir`, uploaded; it must have this run's rank and targets. */
export function loadAdapterFor(be: Backend, config: LlamaConfig, dir: string, wanted: LoraSettings): LoraAdapter {
  const peft = readPeftAdapter(dir);
  checkAdapterFitsBase(peft, config, dir);
  const saved = settingsFromConfig(peft.config, config.numLayers);
  const targets = (s: LoraSettings) => [...s.targets].sort().join(',');
  if (saved.r !== wanted.r || targets(saved) !== targets(wanted) || (saved.layersToTransform ?? null) !== null) {
    throw new UserError(
      `${dir} holds a LoRA of rank ${saved.r} on [${saved.targets}], but this run trains rank ${wanted.r} on [${wanted.targets}]: ` +
        'pass the same --lora_r and --lora_target_modules',
    );
  }
  return adapterFromTensors(be, config, wanted, peft.tensors, dir);
}

/** Restores step, optimizer moments and run state from a checkpoint whose recipe matches `recipe`. */
export function restoreCheckpoint(be: Backend, trainer: Trainer, dir: string, recipe: Recipe): RunState {
  const { state, optimizer } = readCheckpoint(dir);
  const source = join(dir, 'trainer_state.json');
  const step = state.global_step;
  if (!Number.isSafeInteger(step) || (step as number) < 0 || typeof state.recipe !== 'object' || typeof state.run !== 'object') {
    throw new UserError(`${source} lacks global_step, recipe or run: it was not written by this toolkit's finetune`);
  }
  checkSameRecipe(state.recipe as Recipe, recipe, dir);
  restoreOptimizer(be, trainer.optimizer, optimizer, step as number, dir);
  trainer.step = step as number;
  return state.run as RunState;
}
