// `alpaca-lora finetune`: the seed's finetune.py flags (same names and defaults) plus ours, from the command
// line and an optional --config FILE (command line wins). Parsing only; the work is train/finetune.ts,
// and --example runs the built-in example (example/run-example.ts).

import { COMPUTE_DTYPE_FLAG, computeDtypeFrom } from './compute-dtype-flag.ts';
import { ACTIVATION_DTYPES, type ActivationDTypeChoice } from '../model/activation-dtype.ts';
import { BACKEND_NAMES, selectBackend } from '../backends/select.ts';
import { EXAMPLE_RECIPE, runExample } from '../example/run-example.ts';
import { parseTargets } from '../model/lora-io.ts';
import { MODULES_TO_SAVE, type ModuleToSave } from '../formats/weight-names.ts';
import type { LoraInit } from '../model/lora.ts';
import { finetune } from '../train/finetune.ts';
import { checkProcessesDivide, FINETUNE_DEFAULTS, FINETUNING_TYPES, type FinetuneOptions, type FinetuningType } from '../train/finetune-options.ts';
import type { ScheduleKind } from '../train/schedule.ts';
import { UsageError, withGroups, type FlagSpecs, type ParsedFlags } from './args.ts';
import type { Command } from './command.ts';
import { FINETUNE_SECTIONS } from './finetune-sections.ts';
import { parseCommandLine } from './command-line.ts';
import { DATA_FLAGS, datasetOptionsFromFlags, interleaveProbsFromFlags } from './data-flags.ts';
import { QUANT_FLAGS, quantizationFromFlags } from './quant-flags.ts';
import { relaunchUnderMpi } from '../distributed/launch.ts';
import { launchedByMpi } from '../distributed/world.ts';

const D = FINETUNE_DEFAULTS;

const SPECS: FlagSpecs = {
  base_model: { type: 'string', help: 'base model: a local HF folder or a Hub id (e.g. huggyllama/llama-7b)' },
  ...DATA_FLAGS,
  data_path: { type: 'string', default: D.dataPath, help: 'training data: .json, .jsonl (also pre-tokenized rows), .parquet or a Hub data set id; several: a.json,b.jsonl' },
  val_data_path: { type: 'string', help: 'evaluate on this file instead of splitting --val_set_size off the data' },
  output_dir: { type: 'string', default: D.outputDir, help: 'where checkpoints, the adapter, metrics.jsonl and report.html go' },
  batch_size: { type: 'number', default: D.batchSize, help: 'examples per optimizer step' },
  micro_batch_size: { type: 'number', default: D.microBatchSize, help: 'examples per forward/backward (accumulation = batch_size / this)' },
  num_epochs: { type: 'number', default: D.numEpochs, help: 'passes over the training data' },
  max_steps: { type: 'number', default: D.maxSteps, help: 'when > 0, train exactly this many optimizer steps instead' },
  learning_rate: { type: 'number', default: D.learningRate, help: 'peak learning rate' },
  cutoff_len: { type: 'number', default: D.cutoffLen, help: 'truncate every example to this many tokens (conversations: whole trailing turns are dropped)' },
  val_set_size: { type: 'number', default: D.valSetSize, help: 'validation examples split off the data (a count, a fraction, or 0)' },
  lora_r: { type: 'number', default: D.loraR, help: 'LoRA rank' },
  lora_alpha: { type: 'number', default: D.loraAlpha, help: 'LoRA alpha (scaling alpha / r)' },
  lora_dropout: { type: 'number', default: D.loraDropout, help: 'dropout on the LoRA input' },
  lora_target_modules: { type: 'list', default: D.loraTargetModules, help: 'projections to adapt: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj; all-linear (PEFT) or all (LLaMA-Factory): every one of them, not lm_head' },
  finetuning_type: { type: 'string', default: D.finetuningType, help: 'what trains (LLaMA-Factory\'s names): lora (an adapter), full (every weight, float32 masters; saves a model folder) or freeze (the layers --freeze_trainable_layers picks)' },
  full_finetune: { type: 'boolean', default: false, help: 'short for --finetuning_type full' },
  freeze_trainable_layers: { type: 'number', default: D.freezeTrainableLayers, help: 'freeze: train the last N decoder layers (N < 0: the first |N|)' },
  freeze_trainable_modules: { type: 'list', default: D.freezeTrainableModules, help: 'freeze: all, or the layer modules that train: self_attn, mlp, input_layernorm, post_attention_layernorm' },
  loraplus_lr_ratio: { type: 'number', help: 'LoRA+: lora_B matrices learn at this multiple of --learning_rate (PEFT\'s create_loraplus_optimizer; e.g. 16)' },
  group_by_length: { type: 'boolean', default: D.groupByLength, help: 'batch examples of similar length (faster, with a loss curve that zigzags)' },
  packing: { type: 'boolean', default: D.packing, help: 'pack each step\'s examples into rows of cutoff_len tokens (less padding, same loss and gradients: examples never attend to each other)' },
  gradient_checkpointing: { type: 'boolean', default: D.gradientCheckpointing, help: 'keep only each layer\'s input, recompute the layer in the backward: less activation memory, ~1/3 more compute, same results' },
  activation_dtype: { type: 'string', default: D.activationDtype, help: 'auto, f32, bf16 or f16: how activations are stored (auto: bf16 on a bf16 base on --backend cpu, else f32); compute stays float32' },
  ...COMPUTE_DTYPE_FLAG,
  resume_from_checkpoint: { type: 'string', help: 'a checkpoint-N folder, an output_dir with checkpoints (the latest), or an adapter folder' },
  ...QUANT_FLAGS,
  wandb_project: { type: 'string', default: '', help: 'accepted for compatibility; progress goes to output_dir/report.html and metrics.jsonl' },
  wandb_run_name: { type: 'string', default: '', help: 'accepted for compatibility (see --wandb_project)' },
  wandb_watch: { type: 'string', default: '', help: 'accepted for compatibility (see --wandb_project)' },
  wandb_log_model: { type: 'string', default: '', help: 'accepted for compatibility (see --wandb_project)' },
  backend: { type: 'string', default: 'auto', help: `compute backend: ${BACKEND_NAMES.join(', ')}` },
  seed: { type: 'number', default: D.seed, help: 'seed for the adapter init, data order and dropout' },
  shuffle: { type: 'boolean', default: D.shuffle, help: 'shuffle every epoch (false: file order, for runs that must match another implementation)' },
  warmup_steps: { type: 'number', default: D.warmupSteps, help: 'linear warmup from 0 over this many steps' },
  warmup_ratio: { type: 'number', default: D.warmupRatio, help: 'when > 0, warm up over this fraction of the steps instead (rounded up, as transformers does)' },
  lr_scheduler: { type: 'string', default: D.lrScheduler, help: 'linear, cosine or constant decay after warmup' },
  logging_steps: { type: 'number', default: D.loggingSteps, help: 'log the mean loss every this many steps' },
  eval_steps: { type: 'number', default: D.evalSteps, help: 'evaluate every this many steps (0: only at the start and end)' },
  save_steps: { type: 'number', default: D.saveSteps, help: 'save output_dir/checkpoint-N every this many steps (0: never)' },
  save_total_limit: { type: 'number', default: D.saveTotalLimit, help: 'keep this many checkpoints (plus the best; 0: all)' },
  overwrite_output_dir: { type: 'boolean', default: D.overwriteOutputDir, help: 'delete checkpoints of an earlier run found in output_dir (without it, such a folder is refused)' },
  load_best_model_at_end: { type: 'boolean', default: D.loadBestModelAtEnd, help: 'save the adapter of the best eval loss rather than the last' },
  weight_decay: { type: 'number', default: D.weightDecay, help: 'AdamW decoupled weight decay' },
  max_grad_norm: { type: 'number', default: D.maxGradNorm, help: 'clip the global gradient norm to this (0: no clipping)' },
  use_rslora: { type: 'boolean', default: D.useRslora, help: 'rank-stabilised LoRA: scaling alpha / sqrt(r)' },
  use_dora: { type: 'boolean', default: D.useDora, help: 'DoRA (PEFT\'s use_dora): LoRA plus a trained magnitude per output feature of each adapted projection' },
  modules_to_save: { type: 'list', default: D.modulesToSave, help: 'PEFT\'s modules_to_save: embed_tokens,lm_head train as full copies saved with the adapter (for new tokens)' },
  new_special_tokens: { type: 'list', default: D.newSpecialTokens, help: 'LLaMA-Factory\'s: add these special tokens ("<|im_start|>,<|im_end|>"); the embedding and LM head grow (new rows: the mean of the old), LoRA trains them as modules_to_save' },
  lora_init: { type: 'string', default: D.loraInit, help: 'kaiming (PEFT\'s default) or gaussian' },
  nproc_per_node: { type: 'number', default: 1, help: 'data parallel: run this many processes on this machine under mpirun (torchrun\'s flag; or start the command with mpirun -np N yourself)' },
  progress: { type: 'boolean', help: 'live progress line (default: when stderr is a terminal)' },
  example: { type: 'boolean', default: false, help: 'fine-tune the built-in example (a tiny model and data set made here; no download)' },
  config: { type: 'string', help: 'JSON or YAML file of flags (also as the only argument: `alpaca-lora finetune x.yaml`; LLaMA-Factory and axolotl keys too); the command line wins' },
};

const DEFAULTS: ParsedFlags = Object.fromEntries(Object.entries(SPECS).map(([name, spec]) => [name, spec.default]));

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`finetune: --${flag} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value as T;
}

/** --finetuning_type, with --full_finetune as its short form (the two must agree when both are given). */
function finetuningTypeOf(f: ParsedFlags): FinetuningType {
  const type = oneOf<FinetuningType>('finetuning_type', f.finetuning_type as string, FINETUNING_TYPES);
  if (f.full_finetune && type !== 'full' && type !== D.finetuningType) throw new UsageError(`finetune: --full_finetune contradicts --finetuning_type ${type}: pass one of them`);
  return f.full_finetune ? 'full' : type;
}

/** FinetuneOptions from flags merged over their defaults. */
export function optionsFromFlags(f: ParsedFlags): FinetuneOptions {
  const resume = f.resume_from_checkpoint as string | undefined;
  return {
    ...FINETUNE_DEFAULTS,
    baseModel: (f.base_model as string | undefined) ?? '',
    dataPath: f.data_path as string,
    valDataPath: (f.val_data_path as string | undefined) || null,
    outputDir: f.output_dir as string,
    batchSize: f.batch_size as number,
    microBatchSize: f.micro_batch_size as number,
    numEpochs: f.num_epochs as number,
    maxSteps: f.max_steps as number,
    learningRate: f.learning_rate as number,
    cutoffLen: f.cutoff_len as number,
    valSetSize: f.val_set_size as number,
    loraR: f.lora_r as number,
    loraAlpha: f.lora_alpha as number,
    loraDropout: f.lora_dropout as number,
    loraTargetModules: parseTargets(f.lora_target_modules as string[], '--lora_target_modules'),
    finetuningType: finetuningTypeOf(f),
    freezeTrainableLayers: f.freeze_trainable_layers as number,
    freezeTrainableModules: f.freeze_trainable_modules as string[],
    loraplusLrRatio: (f.loraplus_lr_ratio as number | undefined) ?? null,
    trainOnInputs: (f.train_on_inputs as boolean | undefined) ?? null,
    addEosToken: f.add_eos_token as boolean,
    groupByLength: f.group_by_length as boolean,
    packing: f.packing as boolean,
    gradientCheckpointing: f.gradient_checkpointing as boolean,
    activationDtype: oneOf<ActivationDTypeChoice>('activation_dtype', f.activation_dtype as string, ACTIVATION_DTYPES),
    computeDtype: computeDtypeFrom('finetune', f),
    resumeFromCheckpoint: resume && resume !== 'false' && resume !== 'False' ? resume : null,
    promptTemplateName: f.prompt_template_name as string,
    chatTemplate: (f.chat_template as string | undefined) || null,
    dataset: datasetOptionsFromFlags('finetune', f),
    dataColumns: (f.data_columns as string | undefined) || null,
    interleaveProbs: interleaveProbsFromFlags('finetune', f),
    quantization: quantizationFromFlags(f),
    seed: f.seed as number,
    shuffle: f.shuffle as boolean,
    warmupSteps: f.warmup_steps as number,
    warmupRatio: f.warmup_ratio as number,
    lrScheduler: oneOf<ScheduleKind>('lr_scheduler', f.lr_scheduler as string, ['linear', 'cosine', 'constant']),
    loggingSteps: f.logging_steps as number,
    evalSteps: f.eval_steps as number,
    saveSteps: f.save_steps as number,
    saveTotalLimit: f.save_total_limit as number,
    overwriteOutputDir: f.overwrite_output_dir as boolean,
    loadBestModelAtEnd: f.load_best_model_at_end as boolean,
    weightDecay: f.weight_decay as number,
    maxGradNorm: f.max_grad_norm as number,
    useRslora: f.use_rslora as boolean,
    useDora: f.use_dora as boolean,
    modulesToSave: parseModulesToSave(f.modules_to_save as string[]),
    newSpecialTokens: f.new_special_tokens as string[],
    loraInit: oneOf<LoraInit>('lora_init', f.lora_init as string, ['kaiming', 'gaussian']),
    progress: (f.progress as boolean | undefined) ?? FINETUNE_DEFAULTS.progress,
  };
}

const optionsFromGiven = (given: ParsedFlags) => optionsFromFlags({ ...DEFAULTS, ...given });

/** --example's settings: its recipe (camelCase options) wherever the user gave no flag of that (snake_case) name. */
export function exampleOptions(given: ParsedFlags): FinetuneOptions {
  const flagOf = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const recipe = Object.entries(EXAMPLE_RECIPE).filter(([key]) => given[flagOf(key)] === undefined);
  return { ...optionsFromGiven(given), ...Object.fromEntries(recipe) };
}

/** The options `finetune` receives for a command line (the arguments after `finetune`; --example aside). */
export function optionsFromArgv(argv: string[]): FinetuneOptions {
  return optionsFromGiven(parseCommandLine(finetuneCommand, argv).given);
}

/** Exit status 130 (interrupted) once stdout has drained; the checkpoint is already saved. */
function exitInterrupted(): Promise<never> {
  return new Promise(() => process.stdout.write('', () => process.exit(130)));
}

export const finetuneCommand: Command = {
  name: 'finetune',
  summary: 'LoRA (or full/freeze) fine-tuning on instruction data (alpaca-lora\'s finetune.py); --example runs a built-in one-minute example',
  flags: withGroups(SPECS, FINETUNE_SECTIONS),
  async run(flags, _positionals, given) {
    const nproc = (given.nproc_per_node as number | undefined) ?? 1;
    if (!Number.isInteger(nproc) || nproc < 1) throw new UsageError(`finetune: --nproc_per_node must be a positive whole number, got ${nproc}`);
    if (nproc > 1 && !launchedByMpi()) {
      checkProcessesDivide(given.example ? exampleOptions(given) : optionsFromGiven(given), nproc);
      process.exit(await relaunchUnderMpi(nproc));
    }
    if (given.wandb_project) console.log('note: wandb is not used; follow the run in output_dir/report.html and metrics.jsonl');
    const options = given.example ? exampleOptions(given) : optionsFromGiven(given);
    options.backend = selectBackend(flags.backend as string, options.log); // printed first, as every command does
    const result = given.example ? await runExample(options) : await finetune(options);
    if (result.stopped) await exitInterrupted();
  },
};

function parseModulesToSave(names: readonly string[]): ModuleToSave[] {
  for (const n of names) if (!Object.hasOwn(MODULES_TO_SAVE, n)) throw new UsageError(`finetune: --modules_to_save must name embed_tokens and/or lm_head, got "${n}"`);
  return [...new Set(names as ModuleToSave[])];
}
