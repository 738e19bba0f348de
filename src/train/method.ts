// A training method as the trainer sees it: named float32 trainable tensors with their gradients, a forward +
// backward on one micro-batch, and the method's own files (checkpoint weights, final output). LoRA, full and
// freeze fine-tuning are methods (methods/); the loop, accumulation, clipping, AdamW and schedule are not.

import type { TokenBatch } from '../model/batch.ts';
import type { LossResult, TrainingMemory } from '../model/compute.ts';
import type { Model } from '../model/llama.ts';
import type { LoraAdapter } from '../model/lora.ts';
import type { TrainableParam } from './optimizer.ts';

/** What a saved output is checked against: a short batch whose logits must match memory, and whether any step trained. */
export interface SaveCheck {
  probe: TokenBatch;
  trained: boolean;
}

export type MethodSettings = Readonly<Record<string, string | number | boolean>>;

/** A method as chosen from the options, before any model is loaded. */
export interface MethodSpec {
  /** One line for the log (e.g. "LoRA r=8, alpha=16, dropout 0.05 on q_proj, v_proj"). */
  readonly description: string;
  /** The method's settings in flag order, as the run's parameter dump and report show them. */
  readonly settings: MethodSettings;
  /** The settings a checkpoint of this method must share with the run that resumes it. */
  readonly recipe: MethodSettings;
  /** Sets the method up on a loaded model, starting from the weights saved in `from` (a checkpoint or an output) when given. */
  create(model: Model, from: string | null): Promise<TrainingMethod>;
}

export interface TrainingMethod {
  /** The trainable tensors, in a fixed order; their names key the optimizer state in checkpoints. */
  readonly params: readonly TrainableParam[];
  /** The adapter to generate with after training; null when the trained weights are the model's own. */
  readonly generationAdapter: LoraAdapter | null;
  /** Trainable and total parameter counts, for the log. */
  parameterCounts(): { trainable: number; all: number };
  /** Allocates the activations of the largest micro-batch (B rows of T tokens) once for the run. */
  reserve(B: number, T: number, memory: TrainingMemory): void;
  zeroGrads(): void;
  /** Forward and backward; gradients accumulate, each token's scaled by gradScale. `seed` drives dropout. */
  forwardBackward(batch: TokenBatch, seed: number, gradScale: number): Promise<LossResult>;
  /** Forward only, no dropout: the evaluation loss. */
  score(batch: TokenBatch): Promise<LossResult>;
  /** Writes the method's weights into a checkpoint folder being built, and checks them. */
  writeCheckpoint(dir: string, check: SaveCheck): Promise<void>;
  /** Replaces the trained weights by those of a checkpoint folder (load_best_model_at_end). */
  loadCheckpoint(dir: string): Promise<void>;
  /** Writes the final output into outputDir (checked, then moved into place); returns what it wrote, for the log. */
  saveFinal(outputDir: string, check: SaveCheck): Promise<string>;
}
