// What a checkpoint must agree on with the run that resumes it: the data (a fingerprint of the tokenized
// rows), batching, schedule, optimizer and the method's settings. A mismatch would not continue the same run.

import { UserError } from '../../errors.ts';
import type { Example, TrainerSettings } from '../trainer.ts';

export type Recipe = Record<string, string | number | boolean>;

/** FNV-1a over every row's ids and labels: equal rows in equal order give an equal fingerprint. */
export function fingerprintExamples(examples: readonly Example[]): string {
  let h = 0x811c9dc5;
  const mix = (v: number) => {
    h = Math.imul(h ^ (v & 0xffff), 0x01000193) >>> 0;
    h = Math.imul(h ^ (v >>> 16), 0x01000193) >>> 0;
  };
  for (const e of examples) {
    mix(e.input_ids.length);
    for (const id of e.input_ids) mix(id);
    for (const l of e.labels) mix(l + 1000);
  }
  return h.toString(16).padStart(8, '0');
}

/** `method`: the training method's own recipe (TrainingMethod.recipe). */
export function makeRecipe(s: TrainerSettings, method: Readonly<Recipe>, examples: readonly Example[]): Recipe {
  return {
    train_examples: examples.length,
    train_fingerprint: fingerprintExamples(examples),
    micro_batch_size: s.microBatchSize,
    gradient_accumulation_steps: s.gradAccumSteps,
    num_epochs: s.numEpochs,
    max_steps: s.maxSteps,
    data_order: s.order,
    seed: s.seed,
    learning_rate: s.learningRate,
    warmup_steps: s.warmupSteps,
    lr_scheduler: s.scheduler,
    max_grad_norm: s.maxGradNorm,
    weight_decay: s.adamw.weightDecay,
    ...method,
  };
}

/** Throws a UserError listing every field where `saved` (from `source`) differs from `now`. */
export function checkSameRecipe(saved: Recipe, now: Recipe, source: string): void {
  const diffs = Object.keys(now).filter((k) => saved[k] !== now[k]).map((k) => `${k} ${JSON.stringify(saved[k])} there, ${JSON.stringify(now[k])} now`);
  if (diffs.length > 0) {
    throw new UserError(
      `${source} was trained with other settings (${diffs.join('; ')}), so it cannot continue exactly: ` +
        'run with the same flags and data, or pass its adapter files alone to start a new run from its weights',
    );
  }
}
