// The non-weight files of a HF model folder that an export carries along: config.json (with its dtype
// updated when the weights were cast), generation_config.json and the tokenizer files. Not the weights.

import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.ts';

export const TOKENIZER_FILES = [
  'tokenizer.model', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'chat_template.jinja',
] as const;

/** Copies the files of `names` that exist in `from` into `to` (as new files, not keeping a read-only mode); returns those copied. */
export async function copyPresent(from: string, to: string, names: readonly string[]): Promise<string[]> {
  const copied: string[] = [];
  for (const name of names) {
    if (!existsSync(join(from, name))) continue;
    await writeFileAtomic(join(to, name), await readFile(join(from, name)));
    copied.push(name);
  }
  return copied;
}

/**
 * Writes `from`/config.json into `to`, with `dtype` (transformers 5) or `torch_dtype` (4) set when given, the
 * vocab_size given (a vocabulary grown for added tokens), and without a quantization_config: exported weights are
 * never quantized.
 */
export async function writeConfig(from: string, to: string, dtypeName: string | null, vocabSize?: number): Promise<void> {
  const json = JSON.parse(readFileSync(join(from, 'config.json'), 'utf8')) as Record<string, unknown>;
  delete json.quantization_config;
  if (vocabSize !== undefined) json.vocab_size = vocabSize;
  if (dtypeName) json[Object.hasOwn(json, 'torch_dtype') && !Object.hasOwn(json, 'dtype') ? 'torch_dtype' : 'dtype'] = dtypeName;
  await writeFileAtomic(join(to, 'config.json'), JSON.stringify(json, null, 2) + '\n');
}
