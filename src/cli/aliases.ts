// The keys of LLaMA-Factory and axolotl configs that mean one of our flags, as one table: each names the flag
// it sets and how its value maps. An alias works in a config file and on the command line, for every command
// that has its flag. Keys we do not support at all are in UNSUPPORTED, with what to do instead.

import { PROJECTIONS } from '../arch/projections.ts';
import { UsageError, type FlagType, type ParsedFlags } from './args.ts';

type Value = string | number | boolean | string[];

export interface Alias {
  key: string;
  /** The tool whose key it is. */
  from: 'LLaMA-Factory' | 'axolotl' | 'LLaMA-Factory, axolotl';
  type: FlagType;
  /** Our flag it sets; the alias exists where a command has it. */
  flag: string;
  /** What it becomes, for --help. */
  help: string;
  /** Our flags for a value; `get` reads a flag as given, else its default. */
  to(value: Value, get: (flag: string) => Value | undefined): ParsedFlags;
}

const ALL_LINEAR = [...PROJECTIONS];

function oneOf(key: string, value: string, map: Record<string, string>): string {
  const to = map[value];
  if (to === undefined) throw new UsageError(`${key}: ${value} is not supported; supported: ${Object.keys(map).join(', ')}`);
  return to;
}

/** axolotl's `datasets: [{path, type}]` (one entry; alpaca or completion) as our data flags. */
function axolotlDatasets(value: Value): ParsedFlags {
  let entries: unknown;
  try {
    entries = JSON.parse(String(value));
  } catch {
    entries = [{ path: String(value) }];
  }
  const list = Array.isArray(entries) ? entries : [entries];
  if (list.length !== 1) throw new UsageError(`datasets: ${list.length} data sets given; one is supported: merge them into one file`);
  const { path, type = 'alpaca', field, ...rest } = list[0] as Record<string, unknown>;
  if (typeof path !== 'string') throw new UsageError('datasets: the entry needs a path (a .json/.jsonl file or a Hub data set id)');
  const extra = Object.keys(rest);
  if (extra.length) throw new UsageError(`datasets: ${extra.join(', ')} not supported; give path, type (alpaca or completion) and, for completion, field`);
  const format = oneOf('datasets: type', String(type), { alpaca: 'alpaca', completion: 'text' });
  return { data_path: path, data_format: format, ...(field !== undefined ? { text_field: String(field) } : {}) };
}

export const ALIASES: readonly Alias[] = [
  { key: 'model_name_or_path', from: 'LLaMA-Factory', type: 'string', flag: 'base_model', help: '= --base_model', to: (v) => ({ base_model: v }) },
  {
    key: 'dataset', from: 'LLaMA-Factory', type: 'string', flag: 'data_path', help: '= --data_path (files or Hub ids, comma-separated; names from dataset_info.json are not read)',
    to: (v) => ({ data_path: v }),
  },
  { key: 'datasets', from: 'axolotl', type: 'string', flag: 'data_path', help: '[{path, type: alpaca|completion}] = --data_path, --data_format', to: axolotlDatasets },
  { key: 'per_device_train_batch_size', from: 'LLaMA-Factory', type: 'number', flag: 'micro_batch_size', help: '= --micro_batch_size', to: (v) => ({ micro_batch_size: v }) },
  {
    key: 'gradient_accumulation_steps', from: 'LLaMA-Factory, axolotl', type: 'number', flag: 'batch_size', help: '--batch_size = micro batch size × this',
    to: (v, get) => ({ batch_size: (get('micro_batch_size') as number) * (v as number) }),
  },
  { key: 'sample_packing', from: 'axolotl', type: 'boolean', flag: 'packing', help: '= --packing', to: (v) => ({ packing: v }) },
  { key: 'sequence_len', from: 'axolotl', type: 'number', flag: 'cutoff_len', help: '= --cutoff_len', to: (v) => ({ cutoff_len: v }) },
  { key: 'lora_rank', from: 'LLaMA-Factory', type: 'number', flag: 'lora_r', help: '= --lora_r', to: (v) => ({ lora_r: v }) },
  {
    key: 'lora_target', from: 'LLaMA-Factory', type: 'list', flag: 'lora_target_modules', help: '= --lora_target_modules; all = every linear projection',
    to: (v) => ({ lora_target_modules: (v as string[]).join() === 'all' ? ALL_LINEAR : v }),
  },
  {
    key: 'lora_target_linear', from: 'axolotl', type: 'boolean', flag: 'lora_target_modules', help: 'true = --lora_target_modules every linear projection',
    to: (v) => (v ? { lora_target_modules: ALL_LINEAR } : {}),
  },
  { key: 'num_train_epochs', from: 'LLaMA-Factory', type: 'number', flag: 'num_epochs', help: '= --num_epochs (whole epochs)', to: (v) => ({ num_epochs: v }) },
  {
    key: 'lr_scheduler_type', from: 'LLaMA-Factory', type: 'string', flag: 'lr_scheduler', help: '= --lr_scheduler (linear, cosine, constant_with_warmup; constant: no warmup)',
    to: (v) => v === 'constant' ? { lr_scheduler: 'constant', warmup_steps: 0 } : { lr_scheduler: oneOf('lr_scheduler_type', String(v), { linear: 'linear', cosine: 'cosine', constant_with_warmup: 'constant' }) },
  },
  {
    key: 'quantization_bit', from: 'LLaMA-Factory', type: 'number', flag: 'load_in_4bit', help: '4 = --load_in_4bit, 8 = --load_in_8bit',
    to: (v) => ({ [`load_in_${oneOf('quantization_bit', String(v), { 4: '4', 8: '8' })}bit`]: true }),
  },
  { key: 'val_size', from: 'LLaMA-Factory', type: 'number', flag: 'val_set_size', help: '= --val_set_size', to: (v) => ({ val_set_size: v }) },
  { key: 'adapter_name_or_path', from: 'LLaMA-Factory', type: 'string', flag: 'lora_weights', help: '= --lora_weights', to: (v) => ({ lora_weights: v }) },
  { key: 'additional_target', from: 'LLaMA-Factory', type: 'list', flag: 'modules_to_save', help: '= --modules_to_save', to: (v) => ({ modules_to_save: v }) },
];

/** Keys whose value may be a mapping or a list of mappings in a config file (read as JSON text). */
export const STRUCTURED_KEYS: readonly string[] = ['datasets', 'data_columns'];

/** Keys that say what finetune does anyway, accepted with that value only. */
export const AGREEING: Readonly<Record<string, string>> = { stage: 'sft', do_train: 'true', finetuning_type: 'lora', adapter: 'lora' };

/** Switches we recognise but do not support (where a command lacks the flag): true is refused with this line. */
export const UNSUPPORTED: Readonly<Record<string, string>> = {
  gradient_checkpointing: 'a training setting: finetune --gradient_checkpointing',
  load_in_4bit: 'not supported by this command yet',
  load_in_8bit: 'not supported by this command yet',
};

/** Other tools' keys with no counterpart here: what to do instead, for the message that refuses them. */
export const NEAREST: Readonly<Record<string, string>> = {
  template: 'use prompt_template_name (alpaca, alpaca_legacy, alpaca_short, vigogne or a template .json)',
  chat_template: 'use prompt_template_name (alpaca, alpaca_legacy, alpaca_short, vigogne or a template .json)',
  bf16: 'leave it out: the base keeps its stored dtype and LoRA weights train in float32',
  fp16: 'leave it out: the base keeps its stored dtype and LoRA weights train in float32',
  optim: 'use weight_decay and max_grad_norm (the optimizer is torch AdamW)',
  optimizer: 'use weight_decay and max_grad_norm (the optimizer is torch AdamW)',
  per_device_eval_batch_size: 'use micro_batch_size (evaluation uses it too)',
  eval_strategy: 'use eval_steps',
  evaluation_strategy: 'use eval_steps',
  save_strategy: 'use save_steps',
  report_to: 'leave it out: output_dir holds metrics.jsonl and report.html',
  plot_loss: 'leave it out: output_dir/report.html plots the loss',
  lora_model_dir: 'use resume_from_checkpoint (an adapter folder)',
  saves_per_epoch: 'use save_steps',
  evals_per_epoch: 'use eval_steps',
  pad_to_sequence_len: 'leave it out: rows are padded to the longest in their batch',
  dataset_prepared_path: 'leave it out: the data is tokenized at the start of each run (inspect-data --dump_jsonl saves it)',
  flash_attention: 'leave it out: attention is this project\'s own kernel',
  xformers_attention: 'leave it out: attention is this project\'s own kernel',
  model_type: 'leave it out: the architecture is read from config.json',
  tokenizer_type: 'leave it out: the tokenizer is read from the model folder',
  deepspeed: 'leave it out: training runs in one process',
  fsdp: 'leave it out: training runs in one process',
};
