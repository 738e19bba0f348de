// Beam search with transformers' semantics (its vectorised _beam_search): each step keeps the best
// max(2, 1 + #eos) * numBeams continuations, the best numBeams that did not stop run on, the top numBeams
// that stopped join the finished set scored logprob / length ** lengthPenalty, and the early-stopping
// heuristic ends the search. Scores are float32 as in torch. One prompt at a time, its beams one batch with a
// KV cache of its own; no streaming.

import { createDecoder, decodeBatch, freeDecoder } from '../model/decode.ts';
import { kvBlocksFor, type KvPool, type KvSeq } from '../model/kv-cache.ts';
import type { LoraUse, Model } from '../model/llama.ts';
import { yieldToEventLoop, type GenerateHooks, type Generated } from './hooks.ts';
import type { GenerationOptions } from './options.ts';
import { processScores } from './processors.ts';
import { logSoftmax } from './sampling.ts';

const f = Math.fround;
const NEG = -1e9; // HF's "never pick this" score

interface Hypothesis {
  tokens: number[]; // new tokens
  score: number;
}

interface Candidate extends Hypothesis {
  beam: number; // the running beam it extends
  hit: boolean; // it stopped: EOS, a stop string, or the length limit
}

export async function beamSearch(
  m: Model, lora: LoraUse | null, prompt: readonly number[], o: GenerationOptions, hooks: GenerateHooks,
): Promise<Generated> {
  const nb = o.numBeams, V = m.config.vocabSize, P = prompt.length;
  const keep = Math.max(2, 1 + o.eosTokenIds.length) * nb;
  const dec = createDecoder(m, beamKvBlocks(P, o));
  try {
    const promptSeq: KvSeq = { blocks: [], length: 0 };
    const first = (await decodeBatch(dec, [{ seq: promptSeq, ids: prompt, lora, logits: true }])).logits;
    let seqs = reorder(dec.pool, [promptSeq], new Array<number>(nb).fill(0));
    let logits: Float32Array = new Float32Array(nb * V);
    for (let b = 0; b < nb; b++) logits.set(first, b * V);
    let running: Hypothesis[] = Array.from({ length: nb }, (_, b) => ({ tokens: [], score: b === 0 ? 0 : NEG }));
    let finished = Array.from({ length: nb }, () => ({ tokens: [] as number[], score: NEG, done: false }));
    let improvable = true;
    for (let len = 1; ; len++) {
      const cands = topContinuations(logits, running, prompt, o, V, keep);
      for (const c of cands) {
        c.hit = len === o.maxNewTokens || o.eosTokenIds.includes(c.tokens[len - 1]!) || hooks.isStopped?.(c.tokens) === true;
      }
      const next = cands
        .map((c) => ({ ...c, score: c.hit ? f(c.score + NEG) : c.score }))
        .sort((a, b) => b.score - a.score)
        .slice(0, nb);
      const full = finished.every((h) => h.done) && o.earlyStopping === true;
      const lengthScale = f(len ** o.lengthPenalty);
      const newlyFinished = cands.map((c, i) => {
        const counts = c.hit && i < nb;
        let s = f(c.score / lengthScale);
        if (full) s = f(s + NEG);
        if (!improvable) s = f(s + NEG);
        if (!counts) s = f(s + NEG);
        return { tokens: c.tokens, score: s, done: counts };
      });
      finished = [...finished, ...newlyFinished].sort((a, b) => b.score - a.score).slice(0, nb);
      seqs = reorder(dec.pool, seqs, next.map((c) => c.beam));
      running = next;
      improvable &&= canImprove(running[0]!.score, finished, len, o);
      const allFinished = finished.every((h) => h.done) && o.earlyStopping === true;
      if (!improvable || allFinished || cands.every((c) => c.hit)) break;
      await yieldToEventLoop();
      if (hooks.signal?.aborted) return { tokens: (finished[0]!.done ? finished[0]! : running[0]!).tokens, finishReason: 'cancelled' };
      logits = (await decodeBatch(dec, seqs.map((seq, b) => ({ seq, ids: [running[b]!.tokens[len - 1]!], lora, logits: true })))).logits;
    }
    const best = finished[0]!;
    const lastId = best.tokens[best.tokens.length - 1]!;
    const stopped = o.eosTokenIds.includes(lastId) || hooks.isStopped?.(best.tokens) === true;
    return { tokens: best.tokens, finishReason: stopped ? 'stop' : 'length' };
  } finally {
    freeDecoder(dec);
  }
}

/** KV blocks a beam search holds at most: the prompt, and each beam twice while beams are reordered. */
export function beamKvBlocks(promptTokens: number, o: GenerationOptions): number {
  return kvBlocksFor(promptTokens) + 2 * o.numBeams * kvBlocksFor(promptTokens + o.maxNewTokens);
}

/** Beam b continues from seqs[from[b]]: fresh copies, then the old sequences are released. */
function reorder(pool: KvPool, seqs: KvSeq[], from: readonly number[]): KvSeq[] {
  if (from.length === seqs.length && from.every((f, b) => f === b)) return seqs;
  const next = from.map((f) => {
    const seq: KvSeq = { blocks: [], length: 0 };
    pool.copy(seq, seqs[f]!);
    return seq;
  });
  for (const s of seqs) pool.release(s);
  return next;
}

/** The `keep` best (beam, token) pairs by accumulated log-probability, best first. */
function topContinuations(
  logits: Float32Array, running: Hypothesis[], prompt: readonly number[], o: GenerationOptions, V: number, keep: number,
): Candidate[] {
  const best: { score: number; beam: number; token: number }[] = [];
  running.forEach((h, b) => {
    const scores = logits.subarray(b * V, (b + 1) * V);
    logSoftmax(scores);
    processScores(scores, [...prompt, ...h.tokens], o);
    for (let t = 0; t < V; t++) {
      const s = f(scores[t]! + h.score);
      if (best.length === keep && s <= best[keep - 1]!.score) continue;
      if (best.length < keep) best.push({ score: s, beam: b, token: t });
      else best[keep - 1] = { score: s, beam: b, token: t };
      for (let i = best.length - 1; i > 0 && best[i - 1]!.score < s; i--) [best[i - 1], best[i]] = [best[i]!, best[i - 1]!];
    }
  });
  return best.map((c) => ({ tokens: [...running[c.beam]!.tokens, c.token], score: c.score, beam: c.beam, hit: false }));
}

/**
 * HF's early-stop heuristic: the search can still improve while some finished slot is empty or the best
 * running beam, scored at its hypothetical best length, beats the worst finished score.
 */
function canImprove(bestRunning: number, finished: { score: number; done: boolean }[], len: number, o: GenerationOptions): boolean {
  const hypotheticalLength = o.earlyStopping === 'never' && o.lengthPenalty > 0 ? o.maxNewTokens : len;
  const bestPossible = f(bestRunning / f(hypotheticalLength ** o.lengthPenalty));
  const worst = Math.min(...finished.map((h) => h.score));
  return finished.some((h) => bestPossible > (h.done ? worst : NEG));
}
