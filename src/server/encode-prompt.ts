// A request's prompt to token ids within the server's prompt limit, never tokenizing much more than the limit:
// a text whose UTF-8 bytes cannot fit in it is refused untokenized, and a long one is counted on a prefix
// (encodeHead), so a 1 MB prompt costs the event loop no more than one that fits. Not the request's other fields.

import { renderedTextEncoder } from '../data/encode-rendered.ts';
import { encodeHead } from '../data/tokenize.ts';
import type { ServerContext } from './context.ts';
import { RequestError } from './request-error.ts';

/** Generous: no LLaMA tokenizer's tokens average this many UTF-8 bytes over a text. */
export const MAX_BYTES_PER_TOKEN = 64;

/**
 * The ids of `text` (the tokenizer's own BOS/EOS defaults unless `addBos` says), or a 400 naming `field` and the limit.
 * `addBos: false` marks a chat template's text: its special tokens' text becomes their ids, as in training.
 */
export function encodePrompt(ctx: ServerContext, text: string, field: string, addBos?: boolean): number[] {
  const max = ctx.limits.maxPromptTokens;
  const tooLong = (what: string) => new RequestError(`the prompt is ${what}; this server takes at most ${max} tokens`, field, 400, 'context_length_exceeded');
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > max * MAX_BYTES_PER_TOKEN) throw tooLong(`${bytes} bytes, more than ${max} tokens can hold (${max * MAX_BYTES_PER_TOKEN} bytes at ${MAX_BYTES_PER_TOKEN} a token)`);
  if (encodeHead(ctx.rt.tokenizer, text, max + 1).length > max) throw tooLong(`over ${max} tokens`);
  return addBos === false ? renderedTextEncoder(ctx.rt.tokenizer)(text) : ctx.rt.tokenizer.encode(text, addBos === undefined ? undefined : { addBos });
}
