// New special tokens (LLaMA-Factory's --new_special_tokens): what HF's tokenizer.add_special_tokens followed by
// save_pretrained puts in a tokenizer folder (each new token gets the next id, special, matched whole, not
// normalized, no stripping), the splitting of text on added tokens before normal tokenization, and writing
// the edited tokenizer files into an output folder. Not the tokenizers (hf-tokenizer.ts, sentencepiece-tokenizer.ts).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';

/** An added token as tokenizer.json's added_tokens and tokenizer_config.json's added_tokens_decoder hold it. */
export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

/** HF's AddedToken fields for a token added by add_special_tokens with a plain string. */
function addedTokenJson(content: string, withId: number | null): Record<string, unknown> {
  return {
    ...(withId === null ? {} : { id: withId }), content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  };
}

/**
 * The tokens of `tokens` not already known (`known` gives a token's id or null), with the ids HF gives them:
 * `nextId`, nextId + 1, … in order. A token already known keeps its id and is not added again.
 */
export function assignNewIds(tokens: readonly string[], known: (content: string) => number | null, nextId: number): AddedToken[] {
  const out: AddedToken[] = [];
  for (const content of tokens) {
    if (content === '') throw new UserError('--new_special_tokens: a token is empty; pass a comma list such as "<|im_start|>,<|im_end|>"');
    if (known(content) !== null || out.some((t) => t.content === content)) continue;
    out.push({ id: nextId + out.length, content, special: true });
  }
  return out;
}

/** tokenizer.json (parsed) with `added` appended to its added_tokens. */
export function tokenizerJsonWith(json: Record<string, unknown>, added: readonly AddedToken[]): Record<string, unknown> {
  const list = Array.isArray(json.added_tokens) ? json.added_tokens : [];
  return { ...json, added_tokens: [...list, ...added.map((t) => addedTokenJson(t.content, t.id))] };
}

/**
 * tokenizer_config.json (parsed; {} when absent) with the tokens in added_tokens_decoder (when it has one, or
 * `needsDecoder`: a tokenizer.model folder keeps its added tokens only there) and in the additional special
 * tokens list (transformers 5's extra_special_tokens when the file uses that list, else additional_special_tokens).
 */
export function tokenizerConfigWith(config: Record<string, unknown>, added: readonly AddedToken[], needsDecoder: boolean): Record<string, unknown> {
  const out = { ...config };
  if (needsDecoder || typeof config.added_tokens_decoder === 'object') {
    const decoder = { ...((config.added_tokens_decoder as Record<string, unknown> | undefined) ?? {}) };
    for (const t of added) decoder[String(t.id)] = addedTokenJson(t.content, null);
    out.added_tokens_decoder = decoder;
  }
  const listKey = Array.isArray(config.extra_special_tokens) ? 'extra_special_tokens' : 'additional_special_tokens';
  const list = Array.isArray(config[listKey]) ? (config[listKey] as unknown[]) : [];
  out[listKey] = [...list, ...added.map((t) => t.content)];
  return out;
}

/** The added tokens listed in tokenizer_config.json's added_tokens_decoder with ids from `firstId` on (ids beyond a tokenizer.model). */
export function addedTokensFromConfig(config: Record<string, unknown>, firstId: number, source: string): AddedToken[] {
  const decoder = config.added_tokens_decoder;
  if (typeof decoder !== 'object' || decoder === null) return [];
  const out: AddedToken[] = [];
  for (const [key, value] of Object.entries(decoder as Record<string, { content?: unknown; special?: unknown }>)) {
    const id = Number(key);
    if (!Number.isSafeInteger(id) || id < firstId) continue;
    if (typeof value?.content !== 'string' || value.content === '') throw new UserError(`${source}: added_tokens_decoder entry ${key} has no content`);
    out.push({ id, content: value.content, special: value.special !== false });
  }
  out.sort((a, b) => a.id - b.id);
  out.forEach((t, i) => {
    if (t.id !== firstId + i) throw new UserError(`${source}: added token ${JSON.stringify(t.content)} has id ${t.id}, but the ids after the vocabulary (${firstId}) must follow each other`);
  });
  return out;
}

/**
 * Splits text on added tokens as HF does before tokenizing: at each position the longest added token that
 * starts there is taken whole; the text between is returned as strings, the tokens as their ids.
 */
export function splitOnAddedTokens(text: string, added: ReadonlyMap<string, number>): (string | number)[] {
  if (added.size === 0) return text === '' ? [] : [text];
  const byFirst = new Map<string, string[]>();
  for (const content of added.keys()) {
    const list = byFirst.get(content[0]!) ?? [];
    list.push(content);
    byFirst.set(content[0]!, list.sort((a, b) => b.length - a.length));
  }
  const out: (string | number)[] = [];
  let start = 0;
  for (let i = 0; i < text.length;) {
    const match = byFirst.get(text[i]!)?.find((c) => text.startsWith(c, i));
    if (match === undefined) {
      i++;
      continue;
    }
    if (i > start) out.push(text.slice(start, i));
    out.push(added.get(match)!);
    i += match.length;
    start = i;
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}

function readJson(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new UserError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * The tokenizer files of `from` rewritten with `added` (ids already assigned): name -> contents. Not
 * chat_template.jinja: a run on chat data saves the template it trained with under that name.
 */
export function tokenizerFilesWith(from: string, added: readonly AddedToken[]): Map<string, string | Buffer> {
  const files = new Map<string, string | Buffer>();
  const json = (value: unknown) => JSON.stringify(value, null, 2) + '\n';
  const hasJson = existsSync(join(from, 'tokenizer.json'));
  if (hasJson) files.set('tokenizer.json', json(tokenizerJsonWith(readJson(join(from, 'tokenizer.json')), added)));
  if (existsSync(join(from, 'tokenizer.model'))) files.set('tokenizer.model', readFileSync(join(from, 'tokenizer.model')));
  const configPath = join(from, 'tokenizer_config.json');
  const config = existsSync(configPath) ? readJson(configPath) : { tokenizer_class: hasJson ? 'PreTrainedTokenizerFast' : 'LlamaTokenizer' };
  files.set('tokenizer_config.json', json(tokenizerConfigWith(config, added, !hasJson)));
  const mapPath = join(from, 'special_tokens_map.json');
  if (existsSync(mapPath)) {
    const map = readJson(mapPath);
    const list = Array.isArray(map.additional_special_tokens) ? map.additional_special_tokens : [];
    files.set('special_tokens_map.json', json({ ...map, additional_special_tokens: [...list, ...added.map((t) => t.content)] }));
  }
  const addedPath = join(from, 'added_tokens.json');
  if (existsSync(addedPath)) files.set('added_tokens.json', json({ ...readJson(addedPath), ...Object.fromEntries(added.map((t) => [t.content, t.id])) }));
  return files;
}

/** Writes the files of tokenizerFilesWith into `dir` (each atomically); returns their names. */
export async function writeTokenizerFilesWith(from: string, dir: string, added: readonly AddedToken[]): Promise<string[]> {
  const files = tokenizerFilesWith(from, added);
  for (const [name, contents] of files) await writeFileAtomic(join(dir, name), contents);
  return [...files.keys()];
}
