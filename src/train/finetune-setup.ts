// The first part of `finetune`: check the options, resolve the model and data, prepare output_dir, print the
// settings and the memory plan, load the model, set up the method and the trainer (resumed from a checkpoint
// when asked), and open metrics.jsonl and report.html. The loop is finetune.ts, the end finetune-finish.ts.

import { applyComputeDtype } from '../model/compute-dtype.ts';
import { join } from 'node:path';
import { selectBackend } from '../backends/select.ts';
import type { Backend } from '../engine/backend.ts';
import { UserError } from '../errors.ts';
import { resolveActivationDtype } from '../model/activation-dtype.ts';
import type { TokenBatch } from '../model/batch.ts';
import { loadLlamaConfig, type LlamaConfig } from '../arch/llama-config.ts';
import type { Model } from '../model/llama.ts';
import { loadModel } from '../model/load.ts';
import { bnbConfigOf } from '../model/quantization-options.ts';
import { describeQuantization } from '../model/quantized-base.ts';
import { resolveModelDir } from '../hub/resolve.ts';
import { saveChatTemplate } from '../data/chat-template-source.ts';
import { packedRowLength } from '../data/pack.ts';
import { loadTokenizerWith } from '../tokenizer/load.ts';
import { resizeVocab } from '../model/resize-vocab.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { checkpointRunId } from './checkpoint/checkpoint.ts';
import { newRunId, prepareOutputDir } from './checkpoint/output-dir.ts';
import { makeRecipe, type Recipe } from './checkpoint/recipe.ts';
import { locateResume, type ResumePoint } from './checkpoint/resume.ts';
import { restoreTrainerState } from './checkpoint/trainer-state.ts';
import { checkOptions, checkProcessesDivide, FINETUNE_DEFAULTS, gradientAccumulationSteps, type FinetuneOptions } from './finetune-options.ts';
import { newRunState, type LogEntry, type RunState } from './loop.ts';
import { describePlan, planRun } from './memory-plan.ts';
import type { SaveCheck, TrainingMethod } from './method.ts';
import { chooseMethod } from './methods/choose.ts';
import { MetricsFile } from './metrics.ts';
import { TORCH_ADAMW_DEFAULTS } from './optimizer.ts';
import { scheduledSteps } from './plan.ts';
import { prepareData, type PreparedData } from './prepare-data.ts';
import { formatLog, Progress } from './progress.ts';
import { writeReport } from './report.ts';
import { runFacts } from './run-facts.ts';
import { paramsBlock, runSettings, type RunSettings } from './run-settings.ts';
import { Trainer, type Example, type TrainerSettings } from './trainer.ts';
import { shareCoresAmongRanks } from '../distributed/threads.ts';
import { joinWorld, type World } from '../distributed/world.ts';

export type FinetuneInput = Partial<FinetuneOptions> & Pick<FinetuneOptions, 'baseModel'>;

/** Everything the loop and the end of a run share. */
export interface FinetuneRun {
  options: FinetuneOptions;
  settings: RunSettings;
  /** The processes of a data-parallel run (a world of one otherwise); only rank 0 logs, evaluates and writes. */
  world: World;
  started: number; // performance.now() at the call
  be: Backend;
  model: Model;
  tokenizer: Tokenizer;
  data: PreparedData;
  method: TrainingMethod;
  trainer: Trainer;
  recipe: Recipe;
  runId: string | null;
  run: RunState;
  resume: ResumePoint | null;
  metrics: MetricsFile;
  progress: Progress;
  /** Whether any step so far had a positive learning rate, and the batch a saved output must reproduce. */
  saveCheck(): SaveCheck;
  /** The eval loss over the validation set; null without one. */
  evaluate: (() => ReturnType<Trainer['evaluate']>) | null;
  /** Prints a log entry above the progress line. */
  printLog(entry: LogEntry): void;
  /** Rewrites report.html with a status line. */
  report(status: string): Promise<void>;
}

/**
 * New tokens' rows must train: with LoRA, embed_tokens and lm_head become modules_to_save unless the user named
 * some (as LLaMA-Factory does); freeze trains them beside its layers; full trains them anyway.
 */
export function trainNewTokens(o: FinetuneOptions, config: LlamaConfig, log: (line: string) => void): void {
  if (o.finetuningType === 'lora' && o.modulesToSave.length === 0) {
    if (config.tieWordEmbeddings) {
      throw new UserError('--new_special_tokens with LoRA trains embed_tokens and lm_head as modules_to_save, which a base with tied embeddings (tie_word_embeddings) does not support here: use --finetuning_type full');
    }
    o.modulesToSave = ['embed_tokens', 'lm_head'];
    log('new tokens: embed_tokens and lm_head train as modules_to_save (saved with the adapter under PEFT\'s keys)');
  }
  if (o.finetuningType === 'freeze') log('new tokens: embed_tokens and lm_head train beside the freeze selection');
}

/** A short batch without padding (the start of the first row) on which a saved output must match memory. */
function probeBatch(rows: readonly Example[]): TokenBatch {
  const ids = rows[0]!.input_ids.slice(0, 32);
  return { B: 1, T: ids.length, inputIds: Int32Array.from(ids), attentionMask: null, labels: null };
}

export async function setupRun(input: FinetuneInput): Promise<FinetuneRun> {
  const started = performance.now();
  const startedAt = new Date();
  const o: FinetuneOptions = { ...FINETUNE_DEFAULTS, ...input };
  checkOptions(o);
  const world = joinWorld();
  const lead = world.rank === 0;
  if (!lead) o.log = () => {};
  const log = o.log;
  const gradAccum = gradientAccumulationSteps(o);
  checkProcessesDivide(o, world.size);
  // Everything that can be refused cheaply is checked before the parameter dump: backend, paths, data.
  const be = o.backend ?? selectBackend('auto', log);
  shareCoresAmongRanks(be, world);
  const baseDir = await resolveModelDir(o.baseModel, log);
  const baseConfig = loadLlamaConfig(baseDir, { flag: '--base_model' });
  const { tokenizer, added } = loadTokenizerWith(baseDir, o.newSpecialTokens);
  const vocabSize = Math.max(baseConfig.vocabSize, tokenizer.vocabSize);
  if (added.length) {
    log(`new special tokens: ${added.map((t) => `${t.content} = ${t.id}`).join(', ')}; vocabulary ${vocabSize}` + (vocabSize > baseConfig.vocabSize ? ` (embedding and LM head grow from ${baseConfig.vocabSize})` : ''));
    trainNewTokens(o, baseConfig, log);
  }
  const data = await prepareData(tokenizer, { ...o, tokenizerDir: baseDir });
  if (data.val.length && o.loadBestModelAtEnd && o.evalSteps > 0 && o.saveSteps > 0 && o.saveSteps % o.evalSteps !== 0) {
    throw new UserError(
      `--load_best_model_at_end needs --save_steps (${o.saveSteps}) to be a multiple of --eval_steps (${o.evalSteps}) so that evaluations ` +
        'have checkpoints to go back to: change one of them, or pass --load_best_model_at_end false',
    );
  }
  const resume = o.resumeFromCheckpoint ? locateResume(o.resumeFromCheckpoint) : null;
  const runId = resume?.kind === 'checkpoint' ? checkpointRunId(resume.dir) : newRunId();
  if (lead) {
    await prepareOutputDir(o.outputDir, runId, o.overwriteOutputDir, log);
    if (data.chatTemplate) await saveChatTemplate(o.outputDir, data.chatTemplate.source); // generate and serve render with it
  }
  if (o.warmupRatio > 0) {
    const total = o.maxSteps > 0 ? o.maxSteps : scheduledSteps(data.train.length, { microBatchSize: o.microBatchSize, gradAccumSteps: gradAccum }, o.numEpochs);
    o.warmupSteps = Math.ceil(total * o.warmupRatio); // transformers' get_warmup_steps
  }
  const spec = chooseMethod(o, baseDir, added);
  const settings = runSettings(o, gradAccum, spec);
  log(paramsBlock(settings));
  log(`method: ${spec.description}`);
  // a run the planner cannot price (cuda with a quantized base) is refused below, in the loader's words
  const plan = await planRun({ ...o, baseModel: baseDir, backend: be.name, vocabSize }, log).catch((e: unknown) => (e instanceof UserError ? null : Promise.reject(e)));
  if (plan) log(describePlan(plan));

  const model = await loadModel(be, baseDir, { quantize: bnbConfigOf(o.quantization) });
  await resizeVocab(model, vocabSize);
  applyComputeDtype(be, o.computeDtype);
  if (o.computeDtype === 'bf16') log('compute: bf16 products with float32 sums for the bf16 base weights (--compute_dtype bf16)');
  if (model.quantization) log(`base model: ${describeQuantization(model.quantization)}; LoRA adapters and their optimizer state stay float32`); // only LoRA trains on a quantized base
  const activationDtype = resolveActivationDtype(o.activationDtype, model);
  if (o.activationDtype === 'auto') log(`activations: ${activationDtype} (--activation_dtype auto on ${be.name})`);
  const method = await spec.create(model, resume?.dir ?? null);
  const trainerSettings: TrainerSettings = {
    microBatchSize: o.microBatchSize, gradAccumSteps: gradAccum, order: !o.shuffle ? 'file' : o.groupByLength ? 'length' : 'shuffle',
    seed: o.seed, numEpochs: o.numEpochs, maxSteps: o.maxSteps, learningRate: o.learningRate, warmupSteps: o.warmupSteps,
    scheduler: o.lrScheduler, adamw: { ...TORCH_ADAMW_DEFAULTS, weightDecay: o.weightDecay }, maxGradNorm: o.maxGradNorm,
    padId: 0, gradientCheckpointing: o.gradientCheckpointing, activationDtype,
    ...(o.packing ? { packedRowLength: packedRowLength(o.cutoffLen, data.train.map((e) => e.input_ids.length)) } : {}),
  };
  const trainer = new Trainer(be, method, data.train, trainerSettings, world);
  const recipe = makeRecipe(trainerSettings, spec.recipe, data.train);
  const run = resume?.kind === 'checkpoint' ? restoreTrainerState(be, trainer, resume.dir, recipe) : newRunState(runId ?? undefined);

  const { trainable, all } = method.parameterCounts();
  log(`trainable params: ${trainable.toLocaleString('en-US')} || all params: ${all.toLocaleString('en-US')} || trainable%: ${((100 * trainable) / all).toFixed(4)}`);
  const trainTokens = data.train.reduce((n, e) => n + e.input_ids.length, 0);
  log(`data: ${data.train.length} training examples (${trainTokens} tokens); validation: ${data.valSource}`);
  log(`steps: ${trainer.totalSteps} (${trainer.stepsPerEpoch} per epoch; batch ${o.microBatchSize} × ${gradAccum} accumulation)`);
  if (trainerSettings.packedRowLength) log(`packing: each step's ${o.batchSize} examples packed into rows of ${trainerSettings.packedRowLength} tokens, ${o.microBatchSize} rows per micro-batch; evaluation unpacked`);
  if (world.size > 1) log(`data parallel: ${world.size} processes, micro-batches dealt out in turn (${gradAccum / world.size} per process per step); rank 0 logs, evaluates and saves`);
  if (resume?.kind === 'checkpoint') log(`resuming from ${resume.dir} at step ${trainer.step}`);
  if (resume?.kind === 'adapter') log(`starting from the adapter weights in ${resume.dir}`);

  const metrics = new MetricsFile(join(o.outputDir, 'metrics.jsonl'));
  if (lead) await metrics.rewrite(run.history);
  const probe = probeBatch(data.train);
  const progress = new Progress(trainer.totalSteps, lead && o.progress, undefined, log);
  const dataSize = `${data.train.length.toLocaleString('en-US')} examples (${trainTokens.toLocaleString('en-US')} tokens); validation: ${data.valSource}`;
  const reportSettings = { ...settings, base_quantization: model.quantization ? describeQuantization(model.quantization) : 'none (16/32-bit)' };
  return {
    options: o, settings, world, started, be, model, tokenizer, data, method, trainer, recipe, runId, run, resume, metrics, progress,
    saveCheck: () => ({ probe, trained: Array.from({ length: trainer.step }, (_, s) => trainer.learningRateAt(s)).some((lr) => lr > 0) }),
    evaluate: data.val.length && lead ? () => trainer.evaluate(data.val) : null,
    printLog: (e) => progress.log(formatLog(e, trainer.totalSteps, progress.timing())),
    report: async (status) => {
      if (!lead) return;
      const { tokens, seconds } = progress.totals();
      const facts = runFacts({ startedAt, seconds: (performance.now() - started) / 1000, be, model: o.baseModel, data: dataSize, tokens, trainSeconds: seconds });
      await writeReport(join(o.outputDir, 'report.html'), {
        title: `finetune ${o.baseModel} on ${o.dataPath}`, status, running: status.startsWith('running'), facts,
        totalSteps: trainer.totalSteps, history: run.history, settings: reportSettings,
      });
    },
  };
}
