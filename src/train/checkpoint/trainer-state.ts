// trainer_state.json of a checkpoint: step, epoch, schedule, optimizer counters, RNG seeds, data position,
// the recipe a resume must match, the base's quantization (a record only), and the run's log history;
// written from a Trainer and restored into one.

import { join } from 'node:path';
import type { Backend } from '../../engine/backend.ts';
import { UserError } from '../../errors.ts';
import { readCheckpoint } from './checkpoint.ts';
import type { RunState } from '../loop.ts';
import { restoreOptimizer } from './optimizer-state.ts';
import { checkSameRecipe, type Recipe } from './recipe.ts';
import type { Trainer } from '../trainer.ts';

/** `baseQuantization`: the base's bitsandbytes quantization as config.json spells it (null: 16/32-bit). */
export function trainerState(trainer: Trainer, recipe: Recipe, run: RunState, baseQuantization: Record<string, unknown> | null = null): object {
  const s = trainer.settings;
  const step = trainer.step;
  const micro = trainer.microBatchesDone;
  return {
    format: 'alpaca-lora-ts checkpoint 1',
    global_step: step,
    epoch: step / trainer.stepsPerEpoch,
    max_steps: trainer.totalSteps,
    steps_per_epoch: trainer.stepsPerEpoch,
    data_position: { epoch: Math.floor(step / trainer.stepsPerEpoch), step_in_epoch: step % trainer.stepsPerEpoch, micro_batches_done: micro, order: s.order },
    optimizer: { name: 'AdamW', step: trainer.optimizer.step, ...s.adamw },
    scheduler: { kind: s.scheduler, base_lr: s.learningRate, warmup_steps: s.warmupSteps, total_steps: trainer.totalSteps, next_step: step, next_learning_rate: trainer.learningRateAt(step) },
    rng: { seed: s.seed, dropout_seeds: 'hash32(seed ^ 0x5eed, micro-batch index)', micro_batches_done: micro, epoch_order: 'hash32(seed, epoch)' },
    recipe,
    base_quantization: baseQuantization,
    run,
  };
}

/** Restores step, optimizer moments and run state from a checkpoint whose recipe matches `recipe`. */
export function restoreTrainerState(be: Backend, trainer: Trainer, dir: string, recipe: Recipe): RunState {
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
