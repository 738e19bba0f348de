// Finds and opens the tokenizer of a model folder: tokenizer.json (as transformers prefers it), else
// the SentencePiece tokenizer.model. Not a model loader.

import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { HfTokenizer } from './hf-tokenizer.ts';
import { SentencePieceTokenizer } from './sentencepiece-tokenizer.ts';
import { readTokenizerSettings } from './tokenizer-config.ts';
import type { Tokenizer } from './tokenizer.ts';

export function loadTokenizer(dir: string): Tokenizer {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UserError(`${dir} is not a folder: pass the model folder that holds tokenizer.json or tokenizer.model`);
  }
  if (existsSync(join(dir, 'tokenizer.json'))) return new HfTokenizer(dir);
  const model = join(dir, 'tokenizer.model');
  if (existsSync(model)) return SentencePieceTokenizer.fromFile(model, readTokenizerSettings(dir));
  throw new UserError(`${dir} has neither tokenizer.json nor tokenizer.model: pass the model folder that holds its tokenizer files`);
}
