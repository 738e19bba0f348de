// The tokenizer of a model folder as GGUF metadata for llama.cpp: a SentencePiece tokenizer.model as model
// "llama" (pieces, scores, types), or a tokenizer.json BPE as model "llama" (▁ / byte-fallback vocabularies)
// or "gpt2" (byte-level, with merges and the pre-tokenizer's llama.cpp name); special ids, add_bos/eos flags
// and the chat template. Not the tokenizers themselves (src/tokenizer/).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LlamaConfig } from '../arch/llama-config.ts';
import { UserError } from '../errors.ts';
import { GgufValueType, type GgufValue } from '../formats/gguf.ts';
import { gguf } from '../formats/gguf-write.ts';
import { parseSentencePieceModel } from '../tokenizer/sentencepiece-model.ts';
import { readTokenizerSettings, type TokenizerSettings } from '../tokenizer/tokenizer-config.ts';

/** llama.cpp's token types (the same numbers as SentencePiece's piece types). */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

interface Vocab {
  model: 'llama' | 'gpt2';
  pre: string;
  tokens: string[];
  scores: number[] | null;
  types: number[];
  merges: string[] | null;
  ids: { bos: number | null; eos: number | null; unk: number | null; pad: number | null };
}

/** The tokenizer.* metadata for the model in `dir`, padded to the config's vocabulary size. */
export function ggufVocabMetadata(dir: string, config: LlamaConfig): Map<string, GgufValue> {
  const settings = readTokenizerSettings(dir);
  const vocab = existsSync(join(dir, 'tokenizer.model'))
    ? sentencePieceVocab(join(dir, 'tokenizer.model'))
    : existsSync(join(dir, 'tokenizer.json'))
      ? tokenizerJsonVocab(join(dir, 'tokenizer.json'), settings.unkToken)
      : fail(`${dir} has neither tokenizer.model nor tokenizer.json: llama.cpp needs the vocabulary inside the GGUF`);
  applyAddedTokens(vocab, settings);
  padVocab(vocab, config.vocabSize, dir);
  const id = (token: string | undefined, fallback: number | null) => {
    const i = token === undefined ? -1 : vocab.tokens.indexOf(token);
    return i >= 0 ? i : fallback;
  };
  const firstEos = Array.isArray(config.eosTokenId) ? (config.eosTokenId[0] ?? null) : config.eosTokenId;
  const special = {
    bos: id(settings.bosToken, config.bosTokenId ?? vocab.ids.bos),
    eos: id(settings.eosToken, firstEos ?? vocab.ids.eos),
    unk: id(settings.unkToken, vocab.ids.unk),
    pad: id(settings.padToken, config.padTokenId ?? vocab.ids.pad),
  };
  const m = new Map<string, GgufValue>([
    ['tokenizer.ggml.model', gguf.str(vocab.model)],
    ['tokenizer.ggml.pre', gguf.str(vocab.pre)],
    ['tokenizer.ggml.tokens', gguf.array(GgufValueType.STRING, vocab.tokens)],
  ]);
  if (vocab.scores) m.set('tokenizer.ggml.scores', gguf.array(GgufValueType.F32, vocab.scores));
  m.set('tokenizer.ggml.token_type', gguf.array(GgufValueType.I32, vocab.types));
  if (vocab.merges) m.set('tokenizer.ggml.merges', gguf.array(GgufValueType.STRING, vocab.merges));
  const names = { bos: 'bos_token_id', eos: 'eos_token_id', unk: 'unknown_token_id', pad: 'padding_token_id' } as const;
  for (const [k, key] of Object.entries(names)) {
    const v = special[k as keyof typeof special];
    if (v !== null && v < vocab.tokens.length) m.set(`tokenizer.ggml.${key}`, gguf.u32(v));
  }
  m.set('tokenizer.ggml.add_bos_token', gguf.bool(settings.addBosToken ?? vocab.model === 'llama'));
  m.set('tokenizer.ggml.add_eos_token', gguf.bool(settings.addEosToken ?? false));
  const template = chatTemplate(dir, settings);
  if (template) m.set('tokenizer.chat_template', gguf.str(template));
  return m;
}

function fail(message: string): never {
  throw new UserError(message);
}

function sentencePieceVocab(path: string): Vocab {
  const sp = parseSentencePieceModel(readFileSync(path), path);
  if (sp.modelType !== 'bpe' && sp.modelType !== 'unigram') fail(`${path} is a SentencePiece ${sp.modelType} model; llama.cpp reads bpe and unigram ones`);
  const orNull = (i: number) => (i >= 0 && i < sp.pieces.length ? i : null);
  return {
    model: 'llama',
    pre: 'default',
    tokens: [...sp.pieces],
    scores: Array.from(sp.scores),
    types: Array.from(sp.types),
    merges: null,
    ids: { bos: orNull(sp.bosId), eos: orNull(sp.eosId), unk: orNull(sp.unkId), pad: orNull(sp.padId) },
  };
}

/** llama.cpp's names for the byte-level pre-tokenizers it knows, by the split regex tokenizer.json holds. */
const PRE_TOKENIZERS: readonly [string, string][] = [
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", 'llama-bpe'],
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", 'qwen2'],
];

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[]; byte_fallback?: boolean; unk_token?: string | null };
  added_tokens?: { id: number; content: string; special: boolean }[];
  pre_tokenizer?: unknown;
}

/** `unkToken` (tokenizer_config.json's) names the unknown token when the BPE model does not. */
function tokenizerJsonVocab(path: string, unkToken: string | undefined): Vocab {
  let json: TokenizerJson;
  try {
    json = JSON.parse(readFileSync(path, 'utf8')) as TokenizerJson;
  } catch (err) {
    return fail(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  const model = json.model;
  if (model?.type !== 'BPE' || !model.vocab || !model.merges) fail(`${path}: only BPE tokenizer.json vocabularies can be written to GGUF (got ${model?.type})`);
  const tokens: string[] = [];
  for (const [piece, i] of Object.entries(model!.vocab!)) tokens[i] = piece;
  const merges = model!.merges!.map((m) => (Array.isArray(m) ? m.join(' ') : m));
  const added = new Map((json.added_tokens ?? []).map((t) => [t.id, t]));
  for (const [i, t] of added) tokens[i] = t.content;
  for (let i = 0; i < tokens.length; i++) tokens[i] ??= `[PAD${i}]`;
  const unkText = model!.unk_token ?? unkToken;
  const unk = unkText ? tokens.indexOf(unkText) : -1;
  const spmStyle = model!.byte_fallback === true || JSON.stringify(json.pre_tokenizer ?? null).includes('Metaspace');
  const types = tokens.map((piece, i) => {
    const a = added.get(i);
    if (i === unk) return TOKEN_TYPE.unknown;
    if (a) return a.special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
    return spmStyle && /^<0x[0-9A-F]{2}>$/.test(piece) ? TOKEN_TYPE.byte : TOKEN_TYPE.normal;
  });
  const ids = { bos: null, eos: null, unk: unk >= 0 ? unk : null, pad: null };
  if (spmStyle) {
    // llama.cpp's SentencePiece merge loop takes the highest-scoring result first: score = -(merge rank).
    const scores = new Array<number>(tokens.length).fill(0);
    const index = new Map(tokens.map((t, i) => [t, i]));
    merges.forEach((m, rank) => {
      const i = index.get(m.replace(' ', ''));
      if (i !== undefined && scores[i] === 0) scores[i] = -(rank + 1);
    });
    return { model: 'llama', pre: 'default', tokens, scores, types, merges: null, ids };
  }
  const regex = /"pattern":\{"Regex":"((?:[^"\\]|\\.)*)"\}/.exec(JSON.stringify(json.pre_tokenizer ?? null))?.[1];
  const pattern = regex === undefined ? undefined : (JSON.parse(`"${regex}"`) as string);
  const pre = PRE_TOKENIZERS.find(([p]) => p === pattern)?.[1];
  if (!pre) fail(`${path}: its pre-tokenizer is none that llama.cpp knows by name (llama-bpe, qwen2): it cannot be written to GGUF`);
  return { model: 'gpt2', pre: pre!, tokens, scores: null, types, merges, ids };
}

/** tokenizer_config.json's added_tokens_decoder: tokens beyond (or replacing) the base vocabulary. */
function applyAddedTokens(vocab: Vocab, settings: TokenizerSettings): void {
  const decoder = settings.rawConfig.added_tokens_decoder;
  if (typeof decoder !== 'object' || decoder === null) return;
  for (const [key, value] of Object.entries(decoder as Record<string, { content?: unknown; special?: unknown }>)) {
    const i = Number(key);
    if (!Number.isSafeInteger(i) || i < 0 || typeof value?.content !== 'string') continue;
    while (vocab.tokens.length <= i) padOne(vocab);
    if (vocab.tokens[i] === value.content && vocab.types[i] !== TOKEN_TYPE.normal) continue;
    vocab.tokens[i] = value.content;
    vocab.types[i] = value.special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
  }
}

function padOne(vocab: Vocab): void {
  vocab.tokens.push(`[PAD${vocab.tokens.length}]`);
  vocab.scores?.push(-1000);
  vocab.types.push(TOKEN_TYPE.unused);
}

/** As llama.cpp's converter does: a config vocabulary larger than the tokenizer's gets [PADn] tokens. */
function padVocab(vocab: Vocab, size: number, dir: string): void {
  if (vocab.tokens.length > size) fail(`${dir}: the tokenizer has ${vocab.tokens.length} tokens, more than config.json's vocab_size ${size}`);
  while (vocab.tokens.length < size) padOne(vocab);
}

function chatTemplate(dir: string, settings: TokenizerSettings): string | null {
  const file = join(dir, 'chat_template.jinja');
  if (existsSync(file)) return readFileSync(file, 'utf8');
  const t = settings.rawConfig.chat_template;
  return typeof t === 'string' ? t : null;
}
