// Finds and opens the tokenizer of a model folder: tokenizer.json (as transformers prefers it), else
// the SentencePiece tokenizer.model; optionally with new special tokens added (--new_special_tokens). Not a model loader.

import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { assignNewIds, type AddedToken } from './added-tokens.ts';
import { HfTokenizer } from './hf-tokenizer.ts';
import { SentencePieceTokenizer } from './sentencepiece-tokenizer.ts';
import { readTokenizerSettings } from './tokenizer-config.ts';
import type { Tokenizer } from './tokenizer.ts';

export function loadTokenizer(dir: string): Tokenizer {
  return open(dir, []);
}

/**
 * The tokenizer of `dir` with `newSpecialTokens` added as HF's add_special_tokens adds them (tokens it already
 * knows keep their ids); `added` lists the new ones with their ids, for writing the tokenizer files out.
 */
export function loadTokenizerWith(dir: string, newSpecialTokens: readonly string[]): { tokenizer: Tokenizer; added: AddedToken[] } {
  const base = open(dir, []);
  const added = assignNewIds(newSpecialTokens, (t) => base.tokenToId(t), base.vocabSize);
  return { tokenizer: added.length ? open(dir, added) : base, added };
}

function open(dir: string, added: readonly AddedToken[]): HfTokenizer | SentencePieceTokenizer {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UserError(`${dir} is not a folder: pass the model folder that holds tokenizer.json or tokenizer.model`);
  }
  if (existsSync(join(dir, 'tokenizer.json'))) return new HfTokenizer(dir, added);
  const model = join(dir, 'tokenizer.model');
  if (existsSync(model)) return SentencePieceTokenizer.fromFile(model, readTokenizerSettings(dir), added);
  throw new UserError(`${dir} has neither tokenizer.json nor tokenizer.model: pass the model folder that holds its tokenizer files`);
}

/** Whether `dir` holds a tokenizer of its own (tokenizer.json or tokenizer.model). */
export function hasTokenizer(dir: string): boolean {
  return existsSync(join(dir, 'tokenizer.json')) || existsSync(join(dir, 'tokenizer.model'));
}
