// A batch of token rows as the model consumes it, and its upload: ids, key-padding mask, labels shifted
// left by one (the causal-LM targets, -100 ignored), and the RoPE tables for positions 0..T-1
// (a training forward passes no position ids, so left padding does not shift positions). Packed rows
// (segment ids) get one table row per token instead, its position counted from its segment's start.

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
  /** (B, T) packed rows (data/pack.ts): each example one run of equal ids, padding a run of its own; attention then
   * keeps runs apart instead of reading attentionMask. Absent or null: one sequence per row. */
  segmentIds?: Int32Array | null;
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
  const segments = batch.segmentIds ?? null;
  if ((segments !== null) !== (a.segments !== null)) throw new Error('a packed batch needs packed activations and the reverse');
  if (segments) be.upload(a.segments!, segments);
  const { cos, sin } = ropeTables(m.config, segments ? segmentPositions(segments, batch.T) : Array.from({ length: batch.T }, (_, i) => i));
  be.upload(a.cos, cos);
  be.upload(a.sin, sin);
  return countTargets(targets);
}

/** (B*T) positions of packed tokens (B, T): 0 at each segment's first token and at each row's start, counting up within a run. */
export function segmentPositions(segments: Int32Array, T: number): number[] {
  const positions = new Array<number>(segments.length);
  for (let i = 0; i < segments.length; i++) positions[i] = i % T > 0 && segments[i] === segments[i - 1] ? positions[i - 1]! + 1 : 0;
  return positions;
}
