// Reads the special-token settings of a Hugging Face tokenizer folder: tokenizer_config.json, with
// special_tokens_map.json as a fallback for the token strings. Not the vocabulary or the model.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';

export interface TokenizerSettings {
  bosToken?: string;
  eosToken?: string;
  padToken?: string;
  unkToken?: string;
  addBosToken?: boolean;
  addEosToken?: boolean;
  cleanUpTokenizationSpaces?: boolean;
  /** tokenizer_config.json as read ({} when absent), for libraries that take it whole. */
  rawConfig: Record<string, unknown>;
}

/** The settings found in `dir`; absent files or keys leave fields undefined. */
export function readTokenizerSettings(dir: string): TokenizerSettings {
  const config = readJsonObject(join(dir, 'tokenizer_config.json'));
  const map = readJsonObject(join(dir, 'special_tokens_map.json'));
  const token = (key: string) => tokenText(config[key]) ?? tokenText(map[key]);
  const flag = (key: string) => (typeof config[key] === 'boolean' ? (config[key] as boolean) : undefined);
  return {
    bosToken: token('bos_token'),
    eosToken: token('eos_token'),
    padToken: token('pad_token'),
    unkToken: token('unk_token'),
    addBosToken: flag('add_bos_token'),
    addEosToken: flag('add_eos_token'),
    cleanUpTokenizationSpaces: flag('clean_up_tokenization_spaces'),
    rawConfig: config,
  };
}

/** A token is written as a string or as an AddedToken object `{"content": …}`; empty means unset. */
function tokenText(value: unknown): string | undefined {
  const text = typeof value === 'string' ? value : (value as { content?: unknown } | null)?.content;
  return typeof text === 'string' && text !== '' ? text : undefined;
}

function readJsonObject(path: string): Record<string, unknown> {
  if (!existsSync(path)) return {};
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UserError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UserError(`${path} must hold a JSON object`);
  return value as Record<string, unknown>;
}
