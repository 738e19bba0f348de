// The checks of a merged export, as the seed's script asserts them by hand: every adapted weight changed,
// no other weight did (read back through our own readers), and the merged model's logits equal those of
// the base with the adapter applied on a probe batch. Not the writing itself.

import type { Backend } from '../engine/backend.ts';
import { Rng } from '../engine/random.ts';
import { UserError } from '../errors.ts';
import { bytesOf, fromFloat32, toFloat32, type HostTensor } from '../formats/host-tensor.ts';
import type { TokenBatch } from '../model/batch.ts';
import { batchLogits } from '../model/compute.ts';
import { loadModel, type LoadOptions } from '../model/load.ts';
import { loadAdapterOnto } from '../model/lora-io.ts';
import type { MergedCheckpoint } from './merged-checkpoint.ts';
import type { FloatDType } from './output-dtype.ts';

export interface WrittenTensors {
  read(name: string): HostTensor;
}

/**
 * Compares each written tensor (read by its HF name) with the merge and the base: an adapted weight must equal
 * base + delta in the written dtype and differ from the base somewhere; any other must equal the base.
 */
export function checkWrittenWeights(merged: MergedCheckpoint, written: WrittenTensors): void {
  for (const name of merged.names) {
    const out = written.read(name);
    const stored = merged.readBase(name);
    const base = stored.dtype === out.dtype ? stored : fromFloat32(toFloat32(stored), stored.shape, out.dtype);
    const equal = (t: HostTensor) => Buffer.compare(bytesOf(out.data), bytesOf(t.data)) === 0;
    if (out.shape.join() !== stored.shape.join()) throw new Error(`export: ${name} was written with shape [${out.shape}], not [${stored.shape}]`);
    if (!merged.isAdapted(name)) {
      if (!equal(base)) throw new Error(`export: ${name} differs from the base, but the adapter does not touch it`);
      continue;
    }
    const pair = merged.lora?.pairs.get(name);
    const bad = pair ? nonFinite(pair.A) + nonFinite(pair.B) : 0;
    if (bad > 0) {
      throw new UserError(`the adapter holds ${bad} NaN or infinite values in its lora_A/lora_B for ${name}: it is damaged, or its training diverged; merge a checkpoint from before that`);
    }
    if (equal(base)) {
      const badBase = nonFinite(toFloat32(stored));
      if (badBase > 0) throw new UserError(`the base model holds ${badBase} NaN or infinite values in ${name}: its checkpoint is damaged; download or convert it again`);
      throw new UserError(`merging changed nothing in ${name}: the adapter's delta is zero there (an untrained adapter, with lora_B all zeros?) or below ${out.dtype} precision`);
    }
    if (!equal(merged.read(name, out.dtype))) throw new Error(`export: ${name} as written is not base + adapter delta`);
  }
}

function nonFinite(values: Float32Array): number {
  let n = 0;
  for (const v of values) if (!Number.isFinite(v)) n++;
  return n;
}

const PROBE_B = 2;
const PROBE_T = 16;

/** A fixed batch of token ids spread over the vocabulary (BOS first when the config has one). */
export function probeBatch(vocabSize: number, bosId: number | null): TokenBatch {
  const rng = new Rng(1234);
  const ids = new Int32Array(PROBE_B * PROBE_T).map(() => Math.floor(rng.next() * vocabSize));
  for (let b = 0; b < PROBE_B && bosId !== null; b++) ids[b * PROBE_T] = bosId;
  return { B: PROBE_B, T: PROBE_T, inputIds: ids, attentionMask: null, labels: null };
}

/** Largest |merged - (base + adapter)| the stored dtype explains, relative to the largest |logit|. */
export const LOGIT_TOLERANCE: Readonly<Record<FloatDType, number>> = { F32: 1e-4, F16: 1e-2, BF16: 5e-2 };

export interface LogitCheck {
  maxDiff: number; // largest absolute difference
  scale: number; // largest absolute logit of base + adapter
  tolerance: number; // relative to scale
}

/**
 * Logits of base + adapter, then of the merged folder, on the probe batch; throws when they differ beyond
 * tolerance. The two models are loaded one after the other, freeing `be`'s weights, adapters and activations
 * arenas in between: give it a backend of its own. `load` loads the base as the merge read it (dequantized).
 */
export async function checkMergedLogits(
  be: Backend, baseDir: string, loraDir: string, mergedDir: string, dtype: FloatDType, load: LoadOptions = {},
): Promise<LogitCheck> {
  const base = await loadModel(be, baseDir, load);
  const adapter = await loadAdapterOnto(base, loraDir); // first: it may grow the vocabulary, which the probe then draws from
  const batch = probeBatch(base.config.vocabSize, base.config.bosTokenId);
  const expected = await batchLogits(base, batch, { adapter, dropout: 0, seed: 0 });
  for (const arena of ['weights', 'adapters', 'activations'] as const) be.freeArena(arena);
  const actual = await batchLogits(await loadModel(be, mergedDir), batch, null);
  for (const arena of ['weights', 'activations'] as const) be.freeArena(arena);
  let maxDiff = 0, scale = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  const tolerance = LOGIT_TOLERANCE[dtype];
  if (!(maxDiff <= tolerance * scale)) {
    throw new Error(`export: the merged model's logits differ from base + adapter by up to ${maxDiff} (largest logit ${scale}, ${dtype} allows ${tolerance * scale})`);
  }
  return { maxDiff, scale, tolerance };
}
