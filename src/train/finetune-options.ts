// The settings of a fine-tuning run, as the library takes them: the seed's finetune.py arguments (same
// defaults) plus ours. Names are camelCase here; the CLI maps its snake_case flags onto them.

import type { ComputeDType } from '../engine/backend.ts';
import type { ModuleToSave } from '../formats/weight-names.ts';
import type { ActivationDTypeChoice } from '../model/activation-dtype.ts';
import type { Backend } from '../engine/backend.ts';
import type { DatasetOptions } from '../data/dataset.ts';
import { UserError } from '../errors.ts';
import type { LoraInit, Projection } from '../model/lora.ts';
import { bnbConfigOf, type QuantizationOptions } from '../model/quantization-options.ts';
import { checkFreezeModules } from './methods/freeze-selection.ts';
import type { ScheduleKind } from './schedule.ts';

export const FINETUNING_TYPES = ['lora', 'full', 'freeze'] as const;
export type FinetuningType = (typeof FINETUNING_TYPES)[number];

export interface FinetuneOptions {
  baseModel: string;
  dataPath: string;
  /** Evaluate on this file instead of splitting valSetSize off the training data. */
  valDataPath: string | null;
  outputDir: string;
  batchSize: number;
  microBatchSize: number;
  numEpochs: number;
  learningRate: number;
  cutoffLen: number;
  valSetSize: number;
  loraR: number;
  loraAlpha: number;
  loraDropout: number;
  loraTargetModules: Projection[];
  /** What trains (LLaMA-Factory's finetuning_type): a LoRA adapter, every weight (full), or the chosen layers (freeze). */
  finetuningType: FinetuningType;
  /** freeze: the last N decoder layers train (N > 0), or the first |N| (N < 0). */
  freezeTrainableLayers: number;
  /** freeze: the modules of those layers that train (all, self_attn, mlp, input_layernorm, post_attention_layernorm). */
  freezeTrainableModules: string[];
  /** LoRA+: B matrices (and 1-D tensors) learn at this multiple of the learning rate, as PEFT's create_loraplus_optimizer; null: off. */
  loraplusLrRatio: number | null;
  /** null: true for plain Alpaca records (the seed's default), false (answers only) for chat data. */
  trainOnInputs: boolean | null;
  addEosToken: boolean;
  groupByLength: boolean;
  /** Pack each step's examples into rows of cutoff_len tokens, kept apart by segment ids (data/pack.ts); evaluation stays unpacked. */
  packing: boolean;
  /** transformers' gradient_checkpointing: keep each layer's input only and recompute the layer in the backward. */
  gradientCheckpointing: boolean;
  /** Storage of activations: auto = bf16 on a bf16 base on the cpu backend, else f32 (model/activation-dtype.ts). */
  activationDtype: ActivationDTypeChoice;
  /** What a bf16 base's products compute in: f32, or bf16 with float32 sums (cpu with AVX512_BF16; model/compute-dtype.ts). */
  computeDtype: ComputeDType;
  /** A checkpoint-N folder (continues exactly), an output_dir holding checkpoints (the latest), or an adapter folder (its weights). */
  resumeFromCheckpoint: string | null;
  promptTemplateName: string;
  /** How conversations are rendered: tokenizer, llama2, llama3, chatml, alpaca or a .jinja file; null: the tokenizer's, else alpaca. */
  chatTemplate: string | null;
  dataset: DatasetOptions;
  /** Column settings per data path (JSON), for several data sets with different layouts. */
  dataColumns: string | null;
  /** With several data sets: the probability of drawing each next record from each; null: concatenate. */
  interleaveProbs: number[] | null;
  /** Quantize the base's decoder linears on load (QLoRA's load_in_4bit, the seed's load_in_8bit); a base stored quantized is used as it is. */
  quantization: Partial<QuantizationOptions>;
  /** The backend to train on (selectBackend(name) makes one as the CLI's --backend does); null: selectBackend('auto'). */
  backend: Backend | null;
  seed: number;
  /** false: train in file order every epoch. */
  shuffle: boolean;
  warmupSteps: number;
  /** When > 0: warmupSteps = ceil(total steps × this), as transformers' warmup_ratio. */
  warmupRatio: number;
  lrScheduler: ScheduleKind;
  loggingSteps: number;
  evalSteps: number;
  saveSteps: number;
  saveTotalLimit: number;
  /** Delete another run's checkpoints found in outputDir (transformers' overwrite_output_dir) instead of refusing to start. */
  overwriteOutputDir: boolean;
  loadBestModelAtEnd: boolean;
  weightDecay: number;
  maxGradNorm: number;
  useRslora: boolean;
  /** DoRA (PEFT's use_dora): each adapted projection also trains a magnitude per output feature. */
  useDora: boolean;
  /** PEFT's modules_to_save: trainable full copies of embed_tokens and/or lm_head (for new tokens). */
  modulesToSave: ModuleToSave[];
  /** LLaMA-Factory's new_special_tokens: added to the tokenizer as special tokens; the embedding and LM head grow to match. */
  newSpecialTokens: string[];
  loraInit: LoraInit;
  /** Stop after this many optimizer steps (the schedule still spans the whole run); 0: no limit. */
  maxSteps: number;
  /** Live progress line on stderr (default: when stderr is a terminal). */
  progress: boolean;
  /** Where text output goes (default: console.log). */
  log: (line: string) => void;
}

export const FINETUNE_DEFAULTS: Omit<FinetuneOptions, 'baseModel'> = {
  dataPath: 'yahma/alpaca-cleaned',
  valDataPath: null,
  outputDir: './lora-alpaca',
  batchSize: 128,
  microBatchSize: 4,
  numEpochs: 3,
  learningRate: 3e-4,
  cutoffLen: 256,
  valSetSize: 2000,
  loraR: 8,
  loraAlpha: 16,
  loraDropout: 0.05,
  loraTargetModules: ['q_proj', 'v_proj'],
  finetuningType: 'lora',
  freezeTrainableLayers: 2,
  freezeTrainableModules: ['all'],
  loraplusLrRatio: null,
  trainOnInputs: null,
  addEosToken: false,
  groupByLength: false,
  packing: false,
  gradientCheckpointing: false,
  activationDtype: 'auto',
  computeDtype: 'f32',
  resumeFromCheckpoint: null,
  promptTemplateName: 'alpaca',
  chatTemplate: null,
  dataset: {},
  dataColumns: null,
  interleaveProbs: null,
  quantization: {},
  backend: null,
  seed: 42,
  shuffle: true,
  warmupSteps: 100,
  warmupRatio: 0,
  lrScheduler: 'linear',
  loggingSteps: 10,
  evalSteps: 200,
  saveSteps: 200,
  saveTotalLimit: 3,
  overwriteOutputDir: false,
  loadBestModelAtEnd: true,
  weightDecay: 0,
  maxGradNorm: 1.0,
  useRslora: false,
  useDora: false,
  modulesToSave: [],
  newSpecialTokens: [],
  loraInit: 'kaiming',
  maxSteps: 0,
  progress: process.stderr.isTTY === true,
  log: (line) => console.log(line),
};

/** Gradient accumulation steps: batch_size // micro_batch_size, as the seed computes it. */
export function gradientAccumulationSteps(o: Pick<FinetuneOptions, 'batchSize' | 'microBatchSize'>): number {
  return Math.max(1, Math.floor(o.batchSize / o.microBatchSize));
}

/** Data parallel: the step's micro-batches must split evenly among the processes (the seed's torchrun rule). */
export function checkProcessesDivide(o: Pick<FinetuneOptions, 'batchSize' | 'microBatchSize'>, processes: number): void {
  const gradAccum = gradientAccumulationSteps(o);
  if (gradAccum % processes === 0) return;
  throw new UserError(
    `--batch_size ${o.batchSize} / --micro_batch_size ${o.microBatchSize} = ${gradAccum} micro-batches per step do not divide among ${processes} processes: ` +
      `make --batch_size a multiple of ${o.microBatchSize * processes} (micro_batch_size × processes)`,
  );
}

/** Refuses settings that cannot run, naming the flag. */
export function checkOptions(o: FinetuneOptions): void {
  const positiveInt = (v: number, flag: string) => {
    if (!Number.isSafeInteger(v) || v <= 0) throw new UserError(`--${flag} must be a positive integer, got ${v}`);
  };
  const nonNegativeInt = (v: number, flag: string) => {
    if (!Number.isSafeInteger(v) || v < 0) throw new UserError(`--${flag} must be a whole number, 0 or more, got ${v}`);
  };
  if (!o.baseModel) throw new UserError('--base_model is required: a local model folder or a Hugging Face Hub id (e.g. huggyllama/llama-7b)');
  positiveInt(o.batchSize, 'batch_size');
  positiveInt(o.microBatchSize, 'micro_batch_size');
  if (o.microBatchSize > o.batchSize) throw new UserError(`--micro_batch_size ${o.microBatchSize} is larger than --batch_size ${o.batchSize}`);
  positiveInt(o.numEpochs, 'num_epochs');
  positiveInt(o.loraR, 'lora_r');
  positiveInt(o.loggingSteps, 'logging_steps');
  for (const [v, flag] of [[o.warmupSteps, 'warmup_steps'], [o.evalSteps, 'eval_steps'], [o.saveSteps, 'save_steps'], [o.saveTotalLimit, 'save_total_limit'], [o.maxSteps, 'max_steps']] as const) {
    nonNegativeInt(v, flag);
  }
  if (!(o.warmupRatio >= 0 && o.warmupRatio < 1)) throw new UserError(`--warmup_ratio must be in [0, 1), got ${o.warmupRatio}`);
  if (!(o.learningRate > 0)) throw new UserError(`--learning_rate must be positive, got ${o.learningRate}`);
  if (!(o.loraAlpha > 0)) throw new UserError(`--lora_alpha must be positive, got ${o.loraAlpha}`);
  if (!(o.loraDropout >= 0 && o.loraDropout < 1)) throw new UserError(`--lora_dropout must be in [0, 1), got ${o.loraDropout}`);
  if (!(o.weightDecay >= 0)) throw new UserError(`--weight_decay must be 0 or more, got ${o.weightDecay}`);
  if (!(o.maxGradNorm >= 0)) throw new UserError(`--max_grad_norm must be 0 (no clipping) or more, got ${o.maxGradNorm}`);
  if (o.loraTargetModules.length === 0) throw new UserError('--lora_target_modules names no module: give e.g. [q_proj,v_proj]');
  if (!Number.isInteger(o.seed)) throw new UserError(`--seed must be an integer, got ${o.seed}`);
  if (!(FINETUNING_TYPES as readonly string[]).includes(o.finetuningType)) throw new UserError(`--finetuning_type must be one of ${FINETUNING_TYPES.join(', ')}, got "${o.finetuningType}"`);
  if (o.finetuningType === 'freeze') {
    if (!Number.isSafeInteger(o.freezeTrainableLayers) || o.freezeTrainableLayers === 0) {
      throw new UserError(`--freeze_trainable_layers must be a non-zero integer (the last N layers train, or the first |N| when negative), got ${o.freezeTrainableLayers}`);
    }
    checkFreezeModules(o.freezeTrainableModules);
  }
  if (o.loraplusLrRatio !== null && !(o.loraplusLrRatio > 0)) throw new UserError(`--loraplus_lr_ratio must be positive, got ${o.loraplusLrRatio}`);
  for (const [on, flag] of [[o.loraplusLrRatio !== null, 'loraplus_lr_ratio'], [o.useDora, 'use_dora']] as const) {
    if (on && o.finetuningType !== 'lora') throw new UserError(`--${flag} applies to LoRA; this run is --finetuning_type ${o.finetuningType}`);
  }
  if (o.finetuningType !== 'lora' && bnbConfigOf(o.quantization)) {
    throw new UserError(`--finetuning_type ${o.finetuningType} trains base weights, which a quantized base keeps frozen: drop --load_in_4bit/--load_in_8bit, or train LoRA`);
  }
  bnbConfigOf(o.quantization);
}
