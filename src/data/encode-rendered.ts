// Token ids of text a chat template rendered: the special tokens it wrote as text (`<s>`, `</s>`) become their ids,
// and no BOS/EOS is added (transformers tokenizes apply_chat_template's text with add_special_tokens=False).
// tokenizer.json tokenizers match their special tokens themselves; for a SentencePiece tokenizer.model the text is
// split at them here and each piece between is encoded on its own (as the slow LlamaTokenizer, legacy, does).

import type { Tokenizer } from '../tokenizer/tokenizer.ts';

export type TextEncoder = (text: string) => number[];

const encoders = new WeakMap<Tokenizer, TextEncoder>();

/** The encoder for `tokenizer` (made once per tokenizer). */
export function renderedTextEncoder(tokenizer: Tokenizer): TextEncoder {
  let encoder = encoders.get(tokenizer);
  if (!encoder) encoders.set(tokenizer, (encoder = makeEncoder(tokenizer)));
  return encoder;
}

function makeEncoder(tokenizer: Tokenizer): TextEncoder {
  const plain = (text: string) => tokenizer.encode(text, { addBos: false, addEos: false });
  const specials = new Map<string, number>();
  for (const id of [tokenizer.bosId, tokenizer.eosId, tokenizer.unkId]) {
    if (id === null) continue;
    const piece = tokenizer.idToPiece(id);
    const ids = plain(piece);
    if (piece !== '' && !(ids.length === 1 && ids[0] === id)) specials.set(piece, id);
  }
  if (specials.size === 0) return plain;
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`(${[...specials.keys()].sort((a, b) => b.length - a.length).map(escape).join('|')})`);
  return (text) => text.split(pattern).flatMap((part, i) => (i % 2 === 1 ? [specials.get(part)!] : part === '' ? [] : plain(part)));
}
