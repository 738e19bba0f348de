// One optimizer step at a time, as transformers.Trainer does it for alpaca-lora: gradient accumulation over
// micro-batches with the loss normalised by the step's counted tokens, global-norm clipping, the scheduled
// learning rate, AdamW. Also evaluation (token-mean loss). It knows the method (method.ts) only as trainable
// tensors and a forward + backward; not the cadence of logs, evals and saves (loop.ts).

import type { ActivationDType } from '../model/activation-dtype.ts';
import type { Backend } from '../engine/backend.ts';
import { hash32 } from '../engine/random.ts';
import type { Tensor } from '../engine/tensor.ts';
import { collate } from '../data/collate.ts';
import { packedBatches } from '../data/pack.ts';
import { countTargets, shiftTargets, type TokenBatch } from '../model/batch.ts';
import type { TrainingMethod } from './method.ts';
import { AdamW, clipGradNorm, type AdamWOptions, type TrainableParam } from './optimizer.ts';
import { epochPlan, microBatchesPerEpoch, scheduledSteps, stepsPerEpoch, type PlanSettings } from './plan.ts';
import { learningRate, type ScheduleKind } from './schedule.ts';
import { TrainingDiverged } from './diverged.ts';
import { allReduceGradients } from '../distributed/gradients.ts';
import { SINGLE_PROCESS, type World } from '../distributed/world.ts';

/** A training row: token ids and labels of the same length (-100 = not trained). */
export interface Example {
  input_ids: readonly number[];
  labels: readonly number[];
}

export interface TrainerSettings extends PlanSettings {
  numEpochs: number;
  /** When > 0, the run's length in optimizer steps (epochs repeat as needed), as the Trainer's max_steps. */
  maxSteps: number;
  learningRate: number;
  warmupSteps: number;
  scheduler: ScheduleKind;
  adamw: AdamWOptions;
  maxGradNorm: number;
  padId: number;
  /** Keep only each layer's input and recompute its forward in the backward (less memory, ~1/3 more compute). */
  gradientCheckpointing?: boolean;
  /** Activations' storage (--activation_dtype, resolved); default f32. */
  activationDtype?: ActivationDType;
  /** --packing: each step's examples packed into micro-batches of microBatchSize rows of this many tokens (data/pack.ts). */
  packedRowLength?: number;
}

export interface StepResult {
  step: number; // 1-based number of the step just taken
  epoch: number; // fractional, as the Trainer logs it
  loss: number; // sum of token losses over the step / the step's counted tokens
  gradNorm: number; // before clipping
  learningRate: number; // the rate this step used
  targetTokens: number; // counted (trained) tokens
  inputTokens: number; // non-padding tokens processed
  seconds: number;
}

export interface EvalResult {
  loss: number; // token mean
  tokens: number;
}

/** Pads examples into one batch the way alpaca-lora's collator does (left, to a multiple of 8, pad 0). */
export function collateExamples(examples: readonly Example[], padId: number): TokenBatch {
  return collate(examples.map((e) => ({ input_ids: [...e.input_ids], labels: [...e.labels] })), { padId });
}

export class Trainer {
  readonly optimizer: AdamW;
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
  /** Optimizer steps taken so far; also where the data position stands. */
  step = 0;
  private readonly params: TrainableParam[];
  private readonly normScratch: Tensor;
  private readonly lengths: number[];
  private plan: { epoch: number; steps: number[][][] } | null = null;

  constructor(
    readonly be: Backend,
    readonly method: TrainingMethod,
    readonly train: readonly Example[],
    readonly settings: TrainerSettings,
    /** Data parallel: each rank takes every size-th micro-batch of a step, gradients summed over ranks. */
    readonly world: World = SINGLE_PROCESS,
  ) {
    if (train.length === 0) throw new Error('no training examples');
    this.params = [...method.params];
    this.optimizer = new AdamW(be, this.params, settings.adamw);
    this.normScratch = be.alloc([1], 'f32', 'optim');
    this.lengths = train.map((e) => e.input_ids.length);
    // the largest micro-batch: microBatchSize rows of the longest example, padded as collate pads it
    const longest = train.reduce((a, e) => (e.input_ids.length > a.input_ids.length ? e : a));
    const maxT = settings.packedRowLength ?? collateExamples([longest], settings.padId).T;
    method.reserve(settings.microBatchSize, maxT, { checkpointing: settings.gradientCheckpointing ?? false, dtype: settings.activationDtype, packed: settings.packedRowLength !== undefined });
    this.stepsPerEpoch = stepsPerEpoch(train.length, settings);
    this.totalSteps = settings.maxSteps > 0 ? settings.maxSteps : scheduledSteps(train.length, settings, settings.numEpochs);
  }

  get done(): boolean {
    return this.step >= this.totalSteps;
  }

  /** The learning rate of the step about to run (0-based step index). */
  learningRateAt(step: number): number {
    const s = this.settings;
    return learningRate({ baseLr: s.learningRate, warmupSteps: s.warmupSteps, totalSteps: this.totalSteps, kind: s.scheduler }, step);
  }

  /** Micro-batches consumed so far: the data position, and the counter that seeds dropout. */
  get microBatchesDone(): number {
    const epoch = Math.floor(this.step / this.stepsPerEpoch);
    const perEpoch = microBatchesPerEpoch(this.train.length, this.settings.microBatchSize);
    return epoch * perEpoch + Math.min(perEpoch, (this.step % this.stepsPerEpoch) * this.settings.gradAccumSteps);
  }

  /** The micro-batches of the next step, as example indices. */
  nextStepBatches(): number[][] {
    const epoch = Math.floor(this.step / this.stepsPerEpoch);
    if (this.plan?.epoch !== epoch) this.plan = { epoch, steps: epochPlan(this.lengths, this.settings, epoch) };
    return this.plan.steps[this.step % this.stepsPerEpoch]!;
  }

  async trainStep(): Promise<StepResult> {
    const started = performance.now();
    const s = this.settings;
    const groups = this.nextStepBatches();
    const batches: TokenBatch[] = s.packedRowLength
      ? packedBatches(groups.flat().map((i) => this.train[i]!), s.packedRowLength, s.microBatchSize, s.padId)
      : groups.map((idx) => collateExamples(idx.map((i) => this.train[i]!), s.padId));
    const targetTokens = batches.reduce((n, b) => n + countTargets(shiftTargets(b)), 0);
    const inputTokens = batches.reduce((n, b) => n + b.attentionMask!.reduce((a, v) => a + v, 0), 0);
    const epoch = Math.floor(this.step / this.stepsPerEpoch);
    const firstMicro = this.microBatchesDone;
    this.method.zeroGrads();
    let lossSum = 0;
    // every rank counts the whole step's tokens, so each scales its share exactly as one process would
    for (let i = this.world.rank; i < batches.length; i += this.world.size) {
      lossSum += (await this.method.forwardBackward(batches[i]!, hash32(s.seed ^ 0x5eed, firstMicro + i), 1 / Math.max(1, targetTokens))).lossSum;
    }
    lossSum = await allReduceGradients(this.be, this.params.map((p) => p.grad), lossSum, this.world);
    const loss = targetTokens > 0 ? lossSum / targetTokens : 0;
    const gradNorm = await clipGradNorm(this.be, this.params, s.maxGradNorm, this.normScratch);
    const lr = this.learningRateAt(this.step);
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) throw new TrainingDiverged(this.step + 1, loss, gradNorm);
    this.optimizer.update(lr);
    this.step++;
    return {
      step: this.step,
      epoch: epoch + ((this.step - 1) % this.stepsPerEpoch + 1) / this.stepsPerEpoch,
      loss,
      gradNorm,
      learningRate: lr,
      targetTokens,
      inputTokens,
      seconds: (performance.now() - started) / 1000,
    };
  }

  /** Whether any rank asked to stop (Ctrl-C reaches ranks at different moments; all must stop after the same step). */
  agreeToStop(requested: boolean): boolean {
    if (this.world.size === 1) return requested;
    const votes = new Float64Array([requested ? 1 : 0]);
    this.world.allReduceSum(votes);
    return votes[0]! > 0;
  }

  /** Token-mean loss of the trained model (no dropout) over `examples`, batched by similar length. */
  async evaluate(examples: readonly Example[]): Promise<EvalResult> {
    const byLength = [...examples].sort((a, b) => b.input_ids.length - a.input_ids.length);
    let lossSum = 0, tokens = 0;
    for (let i = 0; i < byLength.length; i += this.settings.microBatchSize) {
      const batch = collateExamples(byLength.slice(i, i + this.settings.microBatchSize), this.settings.padId);
      const r = await this.method.score(batch);
      lossSum += r.lossSum;
      tokens += r.tokens;
    }
    return { loss: tokens > 0 ? lossSum / tokens : NaN, tokens };
  }
}
