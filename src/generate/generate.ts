// Autoregressive generation over the KV cache on token ids: greedy search and sampling for one or more
// prompts (left-padded into one batch), and the entry point that hands beam search to beam.ts.
// Text, stop strings and streaming decode are text.ts.

import { Rng } from '../engine/random.ts';
import { UserError } from '../errors.ts';
import { createDecoder, decodeStep, freeDecoder } from '../model/decode.ts';
import { reorderKvCache } from '../model/kv-cache.ts';
import type { LoraUse, Model } from '../model/llama.ts';
import { beamSearch } from './beam.ts';
import { yieldToEventLoop, type GenerateHooks, type Generated } from './hooks.ts';
import { checkOptions, strategyOf, type GenerationOptions } from './options.ts';
import { processScores, warpScores } from './processors.ts';
import { argmax, sample } from './sampling.ts';

export async function generate(
  m: Model, lora: LoraUse | null, prompts: readonly (readonly number[])[], options: GenerationOptions, hooks: GenerateHooks = {},
): Promise<Generated[]> {
  checkOptions(options);
  if (prompts.length === 0) throw new UserError('generate: no prompts');
  for (const p of prompts) {
    if (p.length === 0) throw new UserError('generate: a prompt needs at least one token');
    const bad = p.find((id) => !Number.isInteger(id) || id < 0 || id >= m.config.vocabSize);
    if (bad !== undefined) throw new UserError(`generate: token id ${bad} is outside the vocabulary (0..${m.config.vocabSize - 1})`);
  }
  if (strategyOf(options) !== 'beam') return searchRows(m, lora, prompts, options, hooks);
  const out: Generated[] = [];
  for (const p of prompts) out.push(await beamSearch(m, lora, p, options, hooks));
  return out;
}

/** Greedy search or sampling, one row per prompt; finished rows are fed padding until all are done. */
async function searchRows(
  m: Model, lora: LoraUse | null, prompts: readonly (readonly number[])[], o: GenerationOptions, hooks: GenerateHooks,
): Promise<Generated[]> {
  const B = prompts.length, T = Math.max(...prompts.map((p) => p.length)), V = m.config.vocabSize;
  const ids = new Int32Array(B * T).fill(o.padTokenId), mask = new Int32Array(B * T);
  prompts.forEach((p, b) => {
    ids.set(p, b * T + T - p.length);
    mask.fill(1, b * T + T - p.length, (b + 1) * T);
  });
  const histories = prompts.map((_, b) => Array.from(ids.subarray(b * T, (b + 1) * T))); // HF penalises padding too
  const shared = prompts.every((p) => p.length === T && p.every((id, i) => id === prompts[0]![i]));
  const out: Generated[] = prompts.map(() => ({ tokens: [], finishReason: 'length' }));
  const done = new Array<boolean>(B).fill(false);
  const rng = new Rng(o.seed);
  if (hooks.signal?.aborted) return out.map((g) => ({ ...g, finishReason: 'cancelled' }));
  const dec = createDecoder(m, lora, B, T + o.maxNewTokens, shared ? T : B * T);
  try {
    let logits: Float32Array;
    if (shared) {
      const first = await decodeStep(dec, { ids: ids.subarray(0, T), rows: 1, Tq: T });
      reorderKvCache(m.be, dec.cache, new Array<number>(B).fill(0));
      logits = new Float32Array(B * V);
      for (let b = 0; b < B; b++) logits.set(first, b * V);
    } else {
      logits = await decodeStep(dec, { ids, rows: B, Tq: T, mask });
    }
    for (let step = 1; ; step++) {
      const next = new Int32Array(B).fill(o.padTokenId);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        const scores = logits.subarray(b * V, (b + 1) * V);
        if (o.doSample) warpScores(scores, histories[b]!, o);
        else processScores(scores, histories[b]!, o);
        const id = o.doSample ? sample(scores, rng) : argmax(scores);
        next[b] = id;
        out[b]!.tokens.push(id);
        histories[b]!.push(id);
        const stopped = hooks.onToken?.(b, id) === true;
        if (stopped || o.eosTokenIds.includes(id)) {
          done[b] = true;
          out[b]!.finishReason = 'stop';
        }
      }
      if (done.every(Boolean) || step === o.maxNewTokens) break;
      await yieldToEventLoop();
      if (hooks.signal?.aborted) {
        done.forEach((d, b) => d || (out[b]!.finishReason = 'cancelled'));
        break;
      }
      logits = await decodeStep(dec, { ids: next, rows: B, Tq: 1 });
    }
  } finally {
    freeDecoder(dec);
  }
  return out;
}
