// A batch of token rows as the model consumes it, and its upload: ids, key-padding mask, labels shifted
// left by one (the causal-LM targets, -100 ignored), and the RoPE tables for positions 0..T-1
// (a training forward passes no position ids, so left padding does not shift positions).

import { IGNORE_INDEX } from '../engine/backend.ts';
import type { Activations } from './activations.ts';
import { ropeTables } from './rope.ts';
import type { Model } from './llama.ts';

export interface TokenBatch {
  B: number;
  T: number;
  inputIds: Int32Array; // (B, T)
  attentionMask: Int32Array | null; // (B, T), 1 = real token; null = all ones
  labels: Int32Array | null; // (B, T), -100 = not trained; null = input ids
}

/** targets[b, t] = labels[b, t + 1], and -100 at the last position of each row. */
export function shiftTargets(batch: TokenBatch): Int32Array {
  const { B, T } = batch;
  const labels = batch.labels ?? batch.inputIds;
  const targets = new Int32Array(B * T).fill(IGNORE_INDEX);
  for (let b = 0; b < B; b++) targets.set(labels.subarray(b * T + 1, b * T + T), b * T);
  return targets;
}

export function countTargets(targets: Int32Array): number {
  let n = 0;
  for (const t of targets) if (t !== IGNORE_INDEX) n++;
  return n;
}

/** Uploads the batch into the activations' input buffers; returns the number of counted target tokens. */
export function uploadBatch(m: Model, a: Activations, batch: TokenBatch): number {
  if (batch.B !== a.B || batch.T !== a.T) throw new Error(`batch (${batch.B}, ${batch.T}) does not fit activations (${a.B}, ${a.T})`);
  const { be } = m;
  be.upload(a.ids, batch.inputIds);
  be.upload(a.mask, batch.attentionMask ?? new Int32Array(batch.B * batch.T).fill(1));
  const targets = shiftTargets(batch);
  be.upload(a.targets, targets);
  const positions = Array.from({ length: batch.T }, (_, i) => i);
  const { cos, sin } = ropeTables(m.config, positions);
  be.upload(a.cos, cos);
  be.upload(a.sin, sin);
  return countTargets(targets);
}
