// Generation as text: runs generate() on token ids, decodes each row incrementally for streaming, and
// applies stop strings (cut before the stop string; beam search checks them on its candidates). Not
// prompt building (the Prompter, chat templates) and not transport (CLI, server).

import type { LoraUse, Model } from '../model/llama.ts';
import { StreamDecoder } from '../tokenizer/stream-decoder.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { generate } from './generate.ts';
import type { FinishReason, GenerateHooks } from './hooks.ts';
import type { BatchScheduler } from './scheduler.ts';
import { strategyOf, type GenerationOptions } from './options.ts';
import { findStop, StopMatcher } from './stop-strings.ts';

export interface TextResult {
  text: string; // the new text, without special tokens, cut before a stop string
  tokens: number[]; // every token generated (past a stop string too)
  finishReason: FinishReason;
}

export interface TextHooks {
  /** New text of a row as soon as it is final (beam search: all of it at the end), with the row's token count so far. */
  onText?: (row: number, delta: string, tokens: number) => void;
  signal?: AbortSignal;
  /** The request leaves the queue and joins the batch (a shared scheduler only). */
  onStart?: () => void;
}

const SKIP_SPECIAL = { skipSpecialTokens: true };

/**
 * Runs on `scheduler` when given (a server's batch shared with other requests; it throws QueueFullError
 * synchronously when its queue is full), else on a batch of its own.
 */
export function generateText(
  m: Model, lora: LoraUse | null, tokenizer: Tokenizer, prompts: readonly (readonly number[])[], o: GenerationOptions, hooks: TextHooks = {},
  scheduler?: BatchScheduler,
): Promise<TextResult[]> {
  const streams = prompts.map(() => new StreamDecoder(tokenizer, SKIP_SPECIAL));
  const matchers = prompts.map(() => new StopMatcher(o.stop));
  const texts = prompts.map(() => '');
  const counts = prompts.map(() => 0);
  const emit = (row: number, delta: string) => {
    if (!delta) return;
    texts[row] += delta;
    hooks.onText?.(row, delta, counts[row]!);
  };
  const rowHooks: GenerateHooks = {
    signal: hooks.signal,
    onStart: hooks.onStart,
    onToken: (row, id) => {
      counts[row]!++;
      const r = matchers[row]!.push(streams[row]!.push(id));
      emit(row, r.text);
      return r.stopped;
    },
    isStopped: o.stop.length ? (tokens) => findStop(tokenizer.decode(tokens, SKIP_SPECIAL), o.stop) >= 0 : undefined,
  };
  const run = scheduler ? scheduler.generate(lora, prompts, o, rowHooks) : generate(m, lora, prompts, o, rowHooks);
  return run.then((results) => results.map((g, row) => {
    counts[row] = g.tokens.length;
    if (strategyOf(o) === 'beam') {
      const full = tokenizer.decode(g.tokens, SKIP_SPECIAL);
      const at = findStop(full, o.stop);
      emit(row, at >= 0 ? full.slice(0, at) : full);
    } else if (!matchers[row]!.stopped) {
      emit(row, matchers[row]!.push(streams[row]!.flush()).text + matchers[row]!.flush());
    }
    return { text: texts[row]!, tokens: g.tokens, finishReason: g.finishReason };
  }));
}
