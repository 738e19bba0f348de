// The model-level calls the commands use: score a batch (loss, optional logits) and run one
// forward + backward for training. Activations are cached per (B, T) shape.

import { allocActivations, type Activations } from './activations.ts';
import { uploadBatch, type TokenBatch } from './batch.ts';
import { backward, forward, head, type LoraUse, type Model } from './llama.ts';

const cache = new WeakMap<Model, { key: string; acts: Activations }>();

function activationsFor(m: Model, B: number, T: number, lora: LoraUse | null, withGrad: boolean): Activations {
  const key = `${B}x${T}:${lora ? lora.adapter.settings.targets.join(',') + lora.adapter.settings.r : 'none'}:${withGrad}`;
  const hit = cache.get(m);
  if (hit?.key === key) return hit.acts;
  if (hit) m.be.freeArena('activations');
  const acts = allocActivations(m.be, m.config, B, T, lora?.adapter ?? null, withGrad);
  cache.set(m, { key, acts });
  return acts;
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
  const a = activationsFor(m, batch.B, batch.T, lora, false);
  const tokens = uploadBatch(m, a, batch);
  forward(m, a, lora);
  const lossSum = await head(m, a, false, 0, onLogits);
  return { lossSum, tokens };
}

/**
 * Forward and backward; parameter gradients accumulate into the adapter's (and trained weights') grads.
 * Each token's gradient is scaled by gradScale (1 / counted tokens of the whole optimizer step).
 */
export async function forwardBackward(m: Model, batch: TokenBatch, lora: LoraUse | null, gradScale: number): Promise<LossResult> {
  const a = activationsFor(m, batch.B, batch.T, lora, true);
  const tokens = uploadBatch(m, a, batch);
  forward(m, a, lora);
  const lossSum = await head(m, a, true, gradScale);
  backward(m, a, lora);
  return { lossSum, tokens };
}
