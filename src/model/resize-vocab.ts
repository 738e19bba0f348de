// Growing a model's vocabulary for added tokens, as transformers' resize_token_embeddings does by default
// (mean_resizing=True): old rows kept, each new row of the embedding and of the LM head set to the mean of
// that matrix's old rows. transformers samples the new rows from N(mean, 1e-9 * covariance of the old rows)
// when that covariance is positive definite; we take the mean itself (the sample differs from it by about
// 3e-5 of the rows' spread), which keeps runs reproducible. Not the tokenizer (tokenizer/added-tokens.ts).

import { UserError } from '../errors.ts';
import { isFrozenDType } from '../engine/dtype.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { Model } from './llama.ts';

/** The (V, C) rows `old` followed by newV - V rows that are each the float32 mean of the old rows. */
export function withMeanRows(old: Float32Array, V: number, C: number, newV: number): Float32Array {
  const out = new Float32Array(newV * C);
  out.set(old.subarray(0, V * C));
  if (newV === V) return out;
  const sum = new Float64Array(C);
  for (let v = 0; v < V; v++) for (let c = 0; c < C; c++) sum[c]! += old[v * C + c]!;
  const mean = Float32Array.from(sum, (s) => s / V);
  for (let v = V; v < newV; v++) out.set(mean, v * C);
  return out;
}

/** Grows m's embedding and LM head (one tensor when tied) to `vocabSize` rows and its config with them; no-op when equal. */
export async function resizeVocab(m: Model, vocabSize: number): Promise<void> {
  const V = m.config.vocabSize, C = m.config.hiddenSize;
  if (vocabSize === V) return;
  if (vocabSize < V) throw new UserError(`cannot shrink the vocabulary from ${V} to ${vocabSize} tokens`);
  const w = m.weights;
  const grown = async (t: Tensor): Promise<Tensor> => {
    const rows = withMeanRows((await m.be.download(t)) as Float32Array, V, C, vocabSize);
    const out = m.be.alloc([vocabSize, C], isFrozenDType(t.dtype) ? 'f32' : t.dtype, 'weights'); // never quantized: load.ts keeps them 16/32-bit
    m.be.upload(out, rows);
    m.be.free(t);
    return out;
  };
  const tied = w.lmHead === w.embed;
  w.embed = await grown(w.embed);
  w.lmHead = tied ? w.embed : await grown(w.lmHead);
  m.config = Object.freeze({ ...m.config, vocabSize });
}
