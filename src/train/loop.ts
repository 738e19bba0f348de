// The run around the trainer: steps until done or stopped, logging every `loggingSteps` (mean loss since
// the last log), evaluating every `evalSteps`, saving every `saveSteps`, and tracking the best eval loss.
// Its RunState is plain JSON so a checkpoint can carry it. Not the files themselves (the caller's save hook writes them).

import { checkpointName } from './checkpoint/checkpoint.ts';
import { boundingPeakGib } from './run-facts.ts';
import type { EvalResult, StepResult, Trainer } from './trainer.ts';

export interface TrainLog {
  kind: 'train';
  step: number;
  epoch: number;
  loss: number; // mean of the step losses since the previous log
  learning_rate: number; // of the last step
  grad_norm: number; // of the last step, before clipping
  tokens_per_second: number;
  /** Measured so far: device memory on cuda, process peak RSS on cpu/js (run-facts.ts); absent in older histories. */
  peak_memory_gib?: number;
}

export interface EvalLog {
  kind: 'eval';
  step: number;
  epoch: number;
  eval_loss: number;
  eval_tokens: number;
}

export type LogEntry = TrainLog | EvalLog;

export interface RunState {
  /** Tells this run's checkpoints from another's in the same folder; absent in checkpoints written before ids. */
  id?: string;
  history: LogEntry[];
  pending: { lossSum: number; steps: number; inputTokens: number; seconds: number };
  best: { step: number; evalLoss: number; checkpoint: string | null } | null;
}

export interface Cadence {
  loggingSteps: number;
  evalSteps: number; // 0: never during training
  saveSteps: number; // 0: never
}

export interface LoopHooks {
  onStep(r: StepResult): void;
  onLog(entry: LogEntry): Promise<void>;
  /** Writes checkpoint-<step>; the RunState it carries is already up to date. */
  save(step: number): Promise<void>;
  stopRequested(): boolean;
}

export function newRunState(id?: string): RunState {
  return { ...(id === undefined ? {} : { id }), history: [], pending: { lossSum: 0, steps: 0, inputTokens: 0, seconds: 0 }, best: null };
}

/** Records an evaluation in the run's history and best; returns its entry. */
export function recordEval(run: RunState, trainer: Trainer, r: EvalResult): EvalLog {
  const entry: EvalLog = { kind: 'eval', step: trainer.step, epoch: trainer.step / trainer.stepsPerEpoch, eval_loss: r.loss, eval_tokens: r.tokens };
  run.history.push(entry);
  if (run.best === null || r.loss < run.best.evalLoss) run.best = { step: trainer.step, evalLoss: r.loss, checkpoint: null };
  return entry;
}

/** Runs to the end or to a stop request (after which a checkpoint is saved). */
export async function runLoop(
  trainer: Trainer, run: RunState, cadence: Cadence, evaluate: (() => Promise<EvalResult>) | null, hooks: LoopHooks,
): Promise<'done' | 'stopped'> {
  while (!trainer.done) {
    const r = await trainer.trainStep();
    const p = run.pending;
    p.lossSum += r.loss;
    p.steps++;
    p.inputTokens += r.inputTokens;
    p.seconds += r.seconds;
    hooks.onStep(r);
    if (r.step % cadence.loggingSteps === 0 || trainer.done) {
      const entry: TrainLog = {
        kind: 'train', step: r.step, epoch: r.epoch, loss: p.lossSum / p.steps, learning_rate: r.learningRate,
        grad_norm: r.gradNorm, tokens_per_second: p.inputTokens / Math.max(p.seconds, 1e-9), peak_memory_gib: boundingPeakGib(trainer.be),
      };
      run.pending = { lossSum: 0, steps: 0, inputTokens: 0, seconds: 0 };
      run.history.push(entry);
      await hooks.onLog(entry);
    }
    if (evaluate && cadence.evalSteps > 0 && r.step % cadence.evalSteps === 0) await hooks.onLog(recordEval(run, trainer, await evaluate()));
    const stopping = trainer.agreeToStop(hooks.stopRequested()) && !trainer.done; // a stop at the last step just finishes
    if ((cadence.saveSteps > 0 && r.step % cadence.saveSteps === 0) || stopping) {
      if (run.best?.step === r.step) run.best.checkpoint = checkpointName(r.step);
      await hooks.save(r.step);
    }
    if (stopping) return 'stopped';
  }
  return 'done';
}
