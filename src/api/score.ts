// score: load a model (and optionally a LoRA adapter; either may be a Hub id), compute the mean loss of a token batch and,
// if asked, write its logits. The library form of `alpaca-lora score`.

import type { Backend } from '../engine/backend.ts';
import { UserError } from '../errors.ts';
import { writeSafetensors } from '../formats/safetensors-write.ts';
import type { TokenBatch } from '../model/batch.ts';
import { scoreBatch } from '../model/compute.ts';
import { loadModel } from '../model/load.ts';
import { loadAdapterOnto } from '../model/lora-io.ts';
import { resolveModelInputs } from '../hub/resolve.ts';

export interface ScoreOptions {
  backend: Backend;
  baseModel: string;
  loraWeights?: string;
  batch: TokenBatch;
  /** Write float32 logits (rows, T, vocab) under the key `logits` to this .safetensors file. */
  logitsOut?: string;
}

export interface ScoreResult {
  loss: number; // mean over counted tokens
  tokens: number;
}

export async function score(o: ScoreOptions): Promise<ScoreResult> {
  o = await resolveModelInputs(o);
  const model = await loadModel(o.backend, o.baseModel);
  // the model is this call's own, so an adapter with modules_to_save (and a grown vocabulary) may replace its modules
  const lora = o.loraWeights ? { adapter: await loadAdapterOnto(model, o.loraWeights), dropout: 0, seed: 0 } : null;
  const V = model.config.vocabSize;
  for (const [i, id] of o.batch.inputIds.entries()) {
    if (id < 0 || id >= V) throw new UserError(`input_ids row ${Math.floor(i / o.batch.T)} holds token ${id}, outside the model's vocabulary of ${V}`);
  }
  const logits = o.logitsOut ? new Float32Array(o.batch.B * o.batch.T * V) : null;
  const r = await scoreBatch(model, o.batch, lora, logits ? (row0, _rows, chunk) => logits.set(chunk, row0 * V) : undefined);
  if (r.tokens === 0) throw new UserError('the batch has no counted label (every label is -100 or rows have one token): nothing to score');
  if (logits && o.logitsOut) {
    await writeSafetensors(o.logitsOut, [['logits', { dtype: 'F32', shape: [o.batch.B, o.batch.T, V], data: logits }]]);
  }
  return { loss: r.lossSum / r.tokens, tokens: r.tokens };
}
