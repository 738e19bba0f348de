// The one settings object of a finetune run: every option that shapes it, in the seed's order, with the method's
// own settings in their place. The parameter dump at the start and the report's settings table both read it.

import type { FinetuneOptions } from './finetune-options.ts';
import type { MethodSpec } from './method.ts';

export type RunSettings = Readonly<Record<string, unknown>>;

export function runSettings(o: FinetuneOptions, gradAccum: number, method: MethodSpec): RunSettings {
  return {
    base_model: o.baseModel, data_path: o.dataPath, val_data_path: o.valDataPath, output_dir: o.outputDir,
    batch_size: o.batchSize, micro_batch_size: o.microBatchSize, gradient_accumulation_steps: gradAccum,
    num_epochs: o.numEpochs, max_steps: o.maxSteps, learning_rate: o.learningRate, warmup_steps: o.warmupSteps, warmup_ratio: o.warmupRatio,
    lr_scheduler: o.lrScheduler, weight_decay: o.weightDecay, max_grad_norm: o.maxGradNorm, cutoff_len: o.cutoffLen,
    val_set_size: o.valSetSize, ...method.settings,
    train_on_inputs: o.trainOnInputs ?? 'auto', chat_template: o.chatTemplate ?? 'auto',
    ...(o.newSpecialTokens.length ? { new_special_tokens: `[${o.newSpecialTokens.join(', ')}]` } : {}), add_eos_token: o.addEosToken, group_by_length: o.groupByLength, packing: o.packing, gradient_checkpointing: o.gradientCheckpointing,
    activation_dtype: o.activationDtype, shuffle: o.shuffle, seed: o.seed, backend: o.backend?.name ?? 'auto',
    resume_from_checkpoint: o.resumeFromCheckpoint ?? false, prompt_template: o.promptTemplateName, logging_steps: o.loggingSteps,
    eval_steps: o.evalSteps, save_steps: o.saveSteps, save_total_limit: o.saveTotalLimit, load_best_model_at_end: o.loadBestModelAtEnd,
  };
}

/** The dump alpaca-lora prints before training. */
export function paramsBlock(s: RunSettings): string {
  return ['Training Alpaca-LoRA model with params:', ...Object.entries(s).map(([k, v]) => `${k}: ${v}`)].join('\n');
}
