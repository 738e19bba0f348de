// The model-level calls the commands use: score a batch (loss, optional logits) and run one forward + backward
// for training. Activation buffers live per model for the run: each planned buffer is allocated once for the
// largest shape asked (reserveActivations, or the largest batch seen) and viewed for smaller ones; a
// forward-only pass uses a subset of a training pass's buffers, so it never evicts them.

import type { Tensor } from '../engine/tensor.ts';
import type { ActivationDType } from './activation-dtype.ts';
import { activationPlan, assembleActivations, type ActivationSettings, type Activations } from './activations.ts';
import { uploadBatch, type TokenBatch } from './batch.ts';
import { refreshDora } from './dora.ts';
import { backward, forward, head, type LoraUse, type Model } from './llama.ts';

export interface TrainingMemory {
  /** Recompute each layer's forward in its backward, keeping only the layer inputs (--gradient_checkpointing). */
  checkpointing: boolean;
  /** Activations' storage (--activation_dtype, resolved); scoring in the same run uses it too. Default f32. */
  dtype?: ActivationDType;
  /** Training batches are packed rows (--packing): the reservation includes segment ids and per-token RoPE tables. */
  packed?: boolean;
}

const pools = new WeakMap<Model, { buffers: Map<string, Tensor>; training: TrainingMemory }>();

function poolOf(m: Model) {
  let pool = pools.get(m);
  if (!pool) pools.set(m, (pool = { buffers: new Map(), training: { checkpointing: false } }));
  return pool;
}

function settingsFor(m: Model, lora: LoraUse | null, withGrad: boolean, packed: boolean): ActivationSettings {
  const s = lora?.adapter.settings;
  const { checkpointing, dtype } = poolOf(m).training;
  return { withGrad, loraTargets: s?.targets ?? [], loraR: s?.r ?? 1, dora: s?.useDora ?? false, checkpointing, dtype, packed };
}

/** Views of the model's buffers for a (B, T) pass, growing (freeing and reallocating) only a buffer too small. */
function activationsFor(m: Model, B: number, T: number, lora: LoraUse | null, withGrad: boolean, packed: boolean): Activations {
  const { buffers } = poolOf(m);
  const s = settingsFor(m, lora, withGrad, packed);
  const views = new Map<string, Tensor>();
  for (const b of activationPlan(m.config, B, T, s)) {
    const n = b.shape.reduce((x, d) => x * d, 1);
    let t = buffers.get(b.name);
    if (!t || t.size < n || t.dtype !== b.dtype) {
      if (t) m.be.free(t);
      buffers.set(b.name, (t = m.be.alloc([n], b.dtype, 'activations')));
    }
    views.set(b.name, m.be.view(t, 0, b.shape));
  }
  return assembleActivations(m.config, B, T, s, (name) => views.get(name)!);
}

/**
 * Sets how training keeps activations and allocates the buffers of a training pass of the largest shape the
 * run will see (micro batch size × longest padded row), so that no later batch reallocates.
 */
export function reserveActivations(m: Model, B: number, T: number, lora: LoraUse | null, training: TrainingMemory): void {
  poolOf(m).training = training;
  activationsFor(m, B, T, lora, true, training.packed ?? false);
}

export interface LossResult {
  lossSum: number; // sum of token losses
  tokens: number; // counted target tokens
}

/** Forward only. `onLogits(row0, rows, logits)` receives the logits chunk by chunk (rows of B*T, each V wide). */
export async function scoreBatch(
  m: Model, batch: TokenBatch, lora: LoraUse | null,
  onLogits?: (row0: number, rows: number, logits: Float32Array) => void,
): Promise<LossResult> {
  const a = activationsFor(m, batch.B, batch.T, lora, false, batch.segmentIds != null);
  const tokens = uploadBatch(m, a, batch);
  if (lora?.adapter.settings.useDora) await refreshDora(m, lora.adapter);
  forward(m, a, lora);
  const lossSum = await head(m, a, false, 0, onLogits);
  return { lossSum, tokens };
}

/** Every logit (B*T rows, each V wide) of `batch`, forward only: the probe both adapter and export checks compare. */
export async function batchLogits(m: Model, batch: TokenBatch, lora: LoraUse | null): Promise<Float32Array> {
  const V = m.config.vocabSize;
  const out = new Float32Array(batch.B * batch.T * V);
  await scoreBatch(m, batch, lora, (row0, rows, logits) => out.set(logits.subarray(0, rows * V), row0 * V));
  return out;
}

/**
 * Forward and backward; parameter gradients accumulate into the adapter's (and trained weights') grads.
 * Each token's gradient is scaled by gradScale (1 / counted tokens of the whole optimizer step).
 */
export async function forwardBackward(m: Model, batch: TokenBatch, lora: LoraUse | null, gradScale: number): Promise<LossResult> {
  const a = activationsFor(m, batch.B, batch.T, lora, true, batch.segmentIds != null);
  const tokens = uploadBatch(m, a, batch);
  if (lora?.adapter.settings.useDora) await refreshDora(m, lora.adapter);
  forward(m, a, lora);
  const lossSum = await head(m, a, true, gradScale);
  backward(m, a, lora);
  return { lossSum, tokens };
}
