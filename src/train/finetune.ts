// `finetune` as a library call: alpaca-lora's finetune.py end to end. Loads the base model and data, builds
// or resumes the adapter, runs the loop with logs, evals, checkpoints, metrics.jsonl and report.html, and
// saves the verified PEFT adapter in output_dir. Flag parsing is in cli/finetune.ts.

import { join } from 'node:path';
import { loadLlamaConfig } from '../arch/llama-config.ts';
import { selectBackend } from '../backends/select.ts';
import { UserError } from '../errors.ts';
import { makeAdapterConfig } from '../formats/peft-adapter.ts';
import { adapterToTensors } from '../model/lora-io.ts';
import { createLoraAdapter, initLoraAdapter, loraParameters, type LoraAdapter, type LoraSettings } from '../model/lora.ts';
import { loadModel } from '../model/load.ts';
import { resolveActivationDtype } from '../model/activation-dtype.ts';
import { bnbConfigOf } from '../model/quantization-options.ts';
import { describeQuantization, quantizationRecord } from '../model/quantized-base.ts';
import type { Model } from '../model/llama.ts';
import type { TokenBatch } from '../model/batch.ts';
import { loadTokenizer } from '../tokenizer/load.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { resolveModelDir } from '../hub/resolve.ts';
import { saveChatTemplate } from '../data/chat-template-source.ts';
import { checkpointName, checkpointRunId, rotateCheckpoints, writeCheckpoint } from './checkpoint.ts';
import { checkOptions, FINETUNE_DEFAULTS, gradientAccumulationSteps, type FinetuneOptions } from './finetune-options.ts';
import { newRunState, recordEval, runLoop, type LogEntry, type RunState } from './loop.ts';
import { describePlan, planRun } from './memory-plan.ts';
import { MetricsFile } from './metrics.ts';
import { optimizerTensors } from './optimizer-state.ts';
import { newRunId, prepareOutputDir } from './output-dir.ts';
import { prepareData } from './prepare-data.ts';
import { formatDuration, formatLog, Progress } from './progress.ts';
import { scheduledSteps } from './plan.ts';
import { makeRecipe } from './recipe.ts';
import { writeReport } from './report.ts';
import { runFacts } from './run-facts.ts';
import { loadAdapterFor, locateResume, replaceAdapterWeights } from './resume.ts';
import { restoreTrainerState, trainerState } from './trainer-state.ts';
import { saveVerifiedAdapter } from './save-adapter.ts';
import { TORCH_ADAMW_DEFAULTS } from './optimizer.ts';
import { Trainer, type Example, type TrainerSettings } from './trainer.ts';
import { verifySavedAdapter } from './verify-adapter.ts';

export interface FinetuneResult {
  outputDir: string;
  /** Optimizer steps done. */
  steps: number;
  /** Stopped by Ctrl-C (a checkpoint was saved) rather than finished. */
  stopped: boolean;
  /** Eval loss of the saved adapter, when there is a validation set. */
  evalLoss: number | null;
  history: LogEntry[];
  seconds: number;
  /** The loaded model, tokenizer and trained adapter, for a caller that generates next. */
  model: Model;
  tokenizer: Tokenizer;
  adapter: LoraAdapter;
}

export type FinetuneInput = Partial<FinetuneOptions> & Pick<FinetuneOptions, 'baseModel'>;

function paramsBlock(o: FinetuneOptions, gradAccum: number): string {
  const rows: [string, unknown][] = [
    ['base_model', o.baseModel], ['data_path', o.dataPath], ['val_data_path', o.valDataPath], ['output_dir', o.outputDir],
    ['batch_size', o.batchSize], ['micro_batch_size', o.microBatchSize], ['gradient_accumulation_steps', gradAccum],
    ['num_epochs', o.numEpochs], ['max_steps', o.maxSteps], ['learning_rate', o.learningRate], ['warmup_steps', o.warmupSteps], ['warmup_ratio', o.warmupRatio],
    ['lr_scheduler', o.lrScheduler], ['weight_decay', o.weightDecay], ['max_grad_norm', o.maxGradNorm], ['cutoff_len', o.cutoffLen],
    ['val_set_size', o.valSetSize], ['lora_r', o.loraR], ['lora_alpha', o.loraAlpha], ['lora_dropout', o.loraDropout],
    ['lora_target_modules', `[${o.loraTargetModules.join(', ')}]`], ['use_rslora', o.useRslora], ['lora_init', o.loraInit],
    ['train_on_inputs', o.trainOnInputs ?? 'auto'], ['chat_template', o.chatTemplate ?? 'auto'], ['add_eos_token', o.addEosToken], ['group_by_length', o.groupByLength], ['gradient_checkpointing', o.gradientCheckpointing], ['activation_dtype', o.activationDtype],
    ['shuffle', o.shuffle], ['seed', o.seed], ['backend', typeof o.backend === 'string' ? o.backend : o.backend.name], ['resume_from_checkpoint', o.resumeFromCheckpoint ?? false],
    ['prompt_template', o.promptTemplateName], ['logging_steps', o.loggingSteps], ['eval_steps', o.evalSteps],
    ['save_steps', o.saveSteps], ['save_total_limit', o.saveTotalLimit], ['load_best_model_at_end', o.loadBestModelAtEnd],
  ];
  return ['Training Alpaca-LoRA model with params:', ...rows.map(([k, v]) => `${k}: ${v}`)].join('\n');
}

function countParameters(model: Model, adapter: LoraAdapter): { trainable: number; all: number } {
  const w = model.weights;
  const tensors = new Set([w.embed, w.norm, w.lmHead, ...w.layers.flatMap((l) => [l.inputNorm, l.postNorm, ...Object.values(l.proj).flatMap((p) => [p.weight, p.bias])])]);
  let base = 0;
  for (const t of tensors) base += t?.size ?? 0;
  const trainable = loraParameters(adapter).reduce((n, p) => n + p.param.size, 0);
  return { trainable, all: base + trainable };
}

/** A short batch without padding (the start of the first row) on which a saved adapter must match memory. */
function probeBatch(rows: readonly Example[]): TokenBatch {
  const ids = rows[0]!.input_ids.slice(0, 32);
  return { B: 1, T: ids.length, inputIds: Int32Array.from(ids), attentionMask: null, labels: null };
}

export async function finetune(input: FinetuneInput): Promise<FinetuneResult> {
  const started = performance.now();
  const startedAt = new Date();
  const o: FinetuneOptions = { ...FINETUNE_DEFAULTS, ...input };
  checkOptions(o);
  const log = o.log;
  const gradAccum = gradientAccumulationSteps(o);
  // Everything that can be refused cheaply is checked before the parameter dump: backend, paths, data.
  const be = typeof o.backend === 'string' ? selectBackend(o.backend, log) : o.backend;
  const baseDir = await resolveModelDir(o.baseModel, log);
  loadLlamaConfig(baseDir, { flag: '--base_model' });
  const tokenizer = loadTokenizer(baseDir);
  const data = await prepareData(tokenizer, { ...o, tokenizerDir: baseDir });
  if (data.val.length && o.loadBestModelAtEnd && o.evalSteps > 0 && o.saveSteps > 0 && o.saveSteps % o.evalSteps !== 0) {
    throw new UserError(
      `--load_best_model_at_end needs --save_steps (${o.saveSteps}) to be a multiple of --eval_steps (${o.evalSteps}) so that evaluations ` +
        'have checkpoints to go back to: change one of them, or pass --load_best_model_at_end false',
    );
  }
  const resume = o.resumeFromCheckpoint ? locateResume(o.resumeFromCheckpoint) : null;
  const runId = resume?.kind === 'checkpoint' ? checkpointRunId(resume.dir) : newRunId();
  await prepareOutputDir(o.outputDir, runId, o.overwriteOutputDir, log);
  if (data.chatTemplate) await saveChatTemplate(o.outputDir, data.chatTemplate.source); // generate and serve render with it
  if (o.warmupRatio > 0) {
    const total = o.maxSteps > 0 ? o.maxSteps : scheduledSteps(data.train.length, { microBatchSize: o.microBatchSize, gradAccumSteps: gradAccum }, o.numEpochs);
    o.warmupSteps = Math.ceil(total * o.warmupRatio); // transformers' get_warmup_steps
  }
  log(paramsBlock(o, gradAccum));
  // a run the planner cannot price (cuda with a quantized base) is refused below, in the loader's words
  const plan = await planRun({ ...o, baseModel: baseDir, backend: be.name }, log).catch((e: unknown) => (e instanceof UserError ? null : Promise.reject(e)));
  if (plan) log(describePlan(plan));

  const model = await loadModel(be, baseDir, { quantize: bnbConfigOf(o.quantization) });
  if (model.quantization) log(`base model: ${describeQuantization(model.quantization)}; LoRA adapters and their optimizer state stay float32`);
  const activationDtype = resolveActivationDtype(o.activationDtype, model);
  if (o.activationDtype === 'auto') log(`activations: ${activationDtype} (--activation_dtype auto on ${be.name})`);
  const lora: LoraSettings = { r: o.loraR, alpha: o.loraAlpha, dropout: o.loraDropout, targets: o.loraTargetModules, useRslora: o.useRslora };
  let adapter: LoraAdapter;
  if (resume) {
    adapter = loadAdapterFor(be, model.config, resume.dir, lora);
  } else {
    adapter = createLoraAdapter(be, model.config, lora);
    initLoraAdapter(be, adapter, o.loraInit, o.seed);
  }
  const settings: TrainerSettings = {
    microBatchSize: o.microBatchSize, gradAccumSteps: gradAccum, order: !o.shuffle ? 'file' : o.groupByLength ? 'length' : 'shuffle',
    seed: o.seed, numEpochs: o.numEpochs, maxSteps: o.maxSteps, learningRate: o.learningRate, warmupSteps: o.warmupSteps,
    scheduler: o.lrScheduler, adamw: { ...TORCH_ADAMW_DEFAULTS, weightDecay: o.weightDecay }, maxGradNorm: o.maxGradNorm,
    loraDropout: o.loraDropout, padId: 0, gradientCheckpointing: o.gradientCheckpointing, activationDtype,
  };
  const trainer = new Trainer(model, adapter, data.train, settings);
  const recipe = makeRecipe(settings, lora, data.train);
  let run: RunState = newRunState(runId ?? undefined);
  if (resume?.kind === 'checkpoint') run = restoreTrainerState(be, trainer, resume.dir, recipe);

  const { trainable, all } = countParameters(model, adapter);
  log(`trainable params: ${trainable.toLocaleString('en-US')} || all params: ${all.toLocaleString('en-US')} || trainable%: ${((100 * trainable) / all).toFixed(4)}`);
  const trainTokens = data.train.reduce((n, e) => n + e.input_ids.length, 0);
  log(`data: ${data.train.length} training examples (${trainTokens} tokens); validation: ${data.valSource}`);
  log(`steps: ${trainer.totalSteps} (${trainer.stepsPerEpoch} per epoch; batch ${o.microBatchSize} × ${gradAccum} accumulation)`);
  if (resume?.kind === 'checkpoint') log(`resuming from ${resume.dir} at step ${trainer.step}`);
  if (resume?.kind === 'adapter') log(`starting from the adapter weights in ${resume.dir}`);

  const metrics = new MetricsFile(join(o.outputDir, 'metrics.jsonl'));
  await metrics.rewrite(run.history);
  const adapterConfig = makeAdapterConfig({
    r: o.loraR, loraAlpha: o.loraAlpha, loraDropout: o.loraDropout, targetModules: o.loraTargetModules, useRslora: o.useRslora, baseModelNameOrPath: o.baseModel,
  });
  const probe = probeBatch(data.train);
  const trained = () => Array.from({ length: trainer.step }, (_, s) => trainer.learningRateAt(s)).some((lr) => lr > 0);
  const facts = () => {
    const { tokens, seconds } = progress.totals();
    const dataSize = `${data.train.length.toLocaleString('en-US')} examples (${trainTokens.toLocaleString('en-US')} tokens); validation: ${data.valSource}`;
    return runFacts({ startedAt, seconds: (performance.now() - started) / 1000, be, model: o.baseModel, data: dataSize, tokens, trainSeconds: seconds });
  };
  const report = (status: string) => writeReport(join(o.outputDir, 'report.html'), {
    title: `finetune ${o.baseModel} on ${o.dataPath}`, status, running: status.startsWith('running'), facts: facts(),
    totalSteps: trainer.totalSteps, history: run.history,
    settings: {
      ...Object.fromEntries(paramsBlock(o, gradAccum).split('\n').slice(1).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)])),
      base_quantization: model.quantization ? describeQuantization(model.quantization) : 'none (16/32-bit)',
    },
  });
  const progress = new Progress(trainer.totalSteps, o.progress, undefined, log);
  const evaluate = data.val.length ? () => trainer.evaluate(data.val) : null;
  const printLog = (e: LogEntry) => progress.log(formatLog(e, trainer.totalSteps, progress.timing()));

  if (evaluate && trainer.step === 0) {
    const entry = recordEval(run, trainer, await evaluate());
    printLog(entry);
    await metrics.append(entry);
  }
  await report(`running: step ${trainer.step} of ${trainer.totalSteps}`);

  let stop = false;
  const onSignal = () => {
    if (stop) process.exit(130);
    stop = true;
    progress.log('interrupted: finishing this step, then saving a checkpoint (interrupt again to quit at once; the last checkpoint stays intact)');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let outcome: 'done' | 'stopped';
  try {
    outcome = await runLoop(trainer, run, o, evaluate, {
      onStep: (r) => progress.step(r),
      onLog: async (e) => {
        printLog(e);
        await metrics.append(e);
        await report(`running: step ${trainer.step} of ${trainer.totalSteps}`);
      },
      save: async (step) => {
        const contents = {
          adapterConfig,
          adapter: await adapterToTensors(be, adapter),
          optimizer: await optimizerTensors(be, trainer.optimizer),
          state: trainerState(trainer, recipe, run, quantizationRecord(model.quantization)),
        };
        const dir = await writeCheckpoint(o.outputDir, step, contents, (tmp) => verifySavedAdapter(model, adapter, tmp, probe, trained()));
        const removed = await rotateCheckpoints(o.outputDir, o.saveTotalLimit, run.best?.checkpoint ?? null, runId);
        progress.log(`saved ${dir}${removed.length ? ` (removed ${removed.join(', ')})` : ''}`);
      },
      stopRequested: () => stop,
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    progress.finish();
  }

  const result = (evalLoss: number | null, stopped: boolean): FinetuneResult => ({
    outputDir: o.outputDir, steps: trainer.step, stopped, evalLoss, history: run.history, seconds: (performance.now() - started) / 1000, model, tokenizer, adapter,
  });
  if (outcome === 'stopped') {
    await report(`stopped at step ${trainer.step} of ${trainer.totalSteps}`);
    const dir = join(o.outputDir, checkpointName(trainer.step));
    log(`stopped at step ${trainer.step}: continue with --resume_from_checkpoint ${dir}`);
    return result(null, true);
  }

  let evalLoss: number | null = null;
  if (evaluate) {
    const last = run.history.at(-1);
    if (!(last?.kind === 'eval' && last.step === trainer.step)) {
      const entry = recordEval(run, trainer, await evaluate());
      printLog(entry);
      await metrics.append(entry);
    }
    evalLoss = (run.history.at(-1) as { eval_loss: number }).eval_loss;
    const best = run.best;
    if (o.loadBestModelAtEnd && best && best.step !== trainer.step && best.checkpoint) {
      replaceAdapterWeights(be, model.config, adapter, join(o.outputDir, best.checkpoint), lora);
      evalLoss = best.evalLoss;
      log(`load_best_model_at_end: using ${best.checkpoint} (eval_loss ${best.evalLoss.toFixed(4)})`);
    }
  }
  await saveVerifiedAdapter(model, adapter, adapterConfig, o.outputDir, probe, trained());
  await report('finished');
  const done = result(evalLoss, false);
  log(`saved the adapter to ${o.outputDir} (adapter_config.json, adapter_model.safetensors; verified) after ${trainer.step} steps in ${formatDuration(done.seconds)}` +
    (evalLoss !== null ? `; eval_loss ${evalLoss.toFixed(4)}` : ''));
  return done;
}
