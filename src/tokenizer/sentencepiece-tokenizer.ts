// The Tokenizer for a SentencePiece `tokenizer.model` read directly (LLaMA 1/2): SentencePiece's
// identity normalizer (spaces to ▁, dummy prefix), BPE with byte fallback, and LlamaTokenizer-style
// decoding; added tokens beyond the model (tokenizer_config.json's added_tokens_decoder, or new ones given) are
// split out of the text first, as HF's LlamaTokenizer does. Not for Unigram models or models with a precompiled
// normalization map.

import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { addedTokensFromConfig, splitOnAddedTokens, type AddedToken } from './added-tokens.ts';
import { SentencePieceBpe } from './sentencepiece-bpe.ts';
import { parseSentencePieceModel, PieceType, type SentencePieceModel } from './sentencepiece-model.ts';
import type { TokenizerSettings } from './tokenizer-config.ts';
import type { DecodeOptions, EncodeOptions, Tokenizer } from './tokenizer.ts';

const SPACE = '\u2581';
const utf8 = new TextDecoder('utf-8');

export class SentencePieceTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number;
  readonly padId: number | null;
  readonly unkId: number;
  readonly addBosToken: boolean;
  readonly addEosToken: boolean;
  private readonly bpe: SentencePieceBpe;
  private readonly byteValue: Int16Array; // id -> byte for <0xNN> pieces, else -1
  private readonly added: readonly AddedToken[]; // ids pieces.length, pieces.length + 1, …
  private readonly addedIds: Map<string, number>;
  /** HF's LlamaTokenizer `legacy` (its default true): every text between added tokens gets the dummy prefix, not only the first. */
  private readonly legacy: boolean;

  /** `added`: new tokens after those tokenizer_config.json adds (ids following on). */
  constructor(
    private readonly model: SentencePieceModel,
    readonly source: string,
    settings: Partial<TokenizerSettings> = {},
    added: readonly AddedToken[] = [],
  ) {
    checkSupported(model, source);
    this.bpe = new SentencePieceBpe(model);
    this.added = [...addedTokensFromConfig(settings.rawConfig ?? {}, model.pieces.length, source), ...added];
    this.added.forEach((t, i) => {
      if (t.id !== model.pieces.length + i) throw new Error(`${source}: added token ${t.content} has id ${t.id}, expected ${model.pieces.length + i}`);
    });
    this.addedIds = new Map(this.added.map((t) => [t.content, t.id]));
    this.legacy = settings.rawConfig?.legacy !== false;
    this.vocabSize = model.pieces.length + this.added.length;
    const known = (token: string | undefined) => (token === undefined ? undefined : this.tokenToId(token) ?? -1);
    const lookup = (token: string | undefined, fallback: number) => {
      const id = known(token);
      if (id !== undefined && id >= 0) return id;
      return fallback >= 0 && fallback < this.vocabSize ? fallback : null;
    };
    this.bosId = lookup(settings.bosToken, model.bosId);
    const eos = lookup(settings.eosToken, model.eosId);
    if (eos === null) throw new UserError(`${source} defines no end-of-sequence token (eos_id)`);
    this.eosId = eos;
    this.padId = lookup(settings.padToken, model.padId);
    this.unkId = model.unkId;
    this.addBosToken = settings.addBosToken ?? true;
    this.addEosToken = settings.addEosToken ?? false;
    this.byteValue = new Int16Array(this.vocabSize).fill(-1);
    model.pieces.forEach((piece, id) => {
      if (model.types[id] === PieceType.Byte) this.byteValue[id] = parseInt(piece.slice(3, 5), 16);
    });
  }

  static fromFile(path: string, settings: Partial<TokenizerSettings> = {}, added: readonly AddedToken[] = []): SentencePieceTokenizer {
    return new SentencePieceTokenizer(parseSentencePieceModel(readFileSync(path), path), path, settings, added);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    if ((options.addBos ?? this.addBosToken) && this.bosId !== null) ids.push(this.bosId);
    if (this.addedIds.size === 0) this.bpe.encode(this.normalize(text), ids);
    else {
      let atStart = true;
      for (const part of splitOnAddedTokens(text, this.addedIds)) {
        if (typeof part === 'number') ids.push(part);
        else this.bpe.encode(this.legacy || atStart ? this.normalize(part) : this.normalizeInner(part), ids);
        atStart = false;
      }
    }
    if (options.addEos ?? this.addEosToken) ids.push(this.eosId);
    return ids;
  }

  /** A text after an added token when not `legacy`: as HF encodes it (behind an unknown token), with no dummy prefix. */
  private normalizeInner(text: string): string {
    return this.model.normalizer.removeExtraWhitespaces ? text.replace(/ +/g, ' ').replace(/ $/, '') : text;
  }

  /** SentencePiece's identity normalization, but for spaces, which the BPE turns into ▁ itself. */
  private normalize(text: string): string {
    const spec = this.model.normalizer;
    let s = text;
    if (spec.removeExtraWhitespaces) s = s.replace(/ +/g, ' ').replace(/^ | $/g, '');
    if (s === '') return '';
    return spec.addDummyPrefix ? ' ' + s : s;
  }

  /**
   * As SentencePiece decodes: byte pieces joined into UTF-8, ▁ to space, and the ▁ of the first text
   * piece dropped (the dummy prefix). Special tokens print as their text unless skipped.
   */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const spec = this.model.normalizer;
    let atStart = spec.addDummyPrefix || spec.removeExtraWhitespaces; // a leading ▁ may still be dropped
    let text = '';
    let bytes: number[] = [];
    for (const id of ids) {
      this.checkId(id);
      if (id < this.byteValue.length && this.byteValue[id]! >= 0) {
        bytes.push(this.byteValue[id]!);
        continue;
      }
      if (bytes.length > 0) {
        text += utf8.decode(Uint8Array.from(bytes));
        bytes = [];
      }
      if (this.isSpecial(id) || id >= this.model.pieces.length) {
        if (!(options.skipSpecialTokens && this.isSpecial(id))) text += this.idToPiece(id);
        continue;
      }
      let piece = this.model.pieces[id]!;
      if (atStart && text === '' && piece.startsWith(SPACE)) {
        piece = piece.slice(1);
        atStart = spec.removeExtraWhitespaces;
      } else if (text !== '') {
        atStart = false;
      }
      text += piece.replaceAll(SPACE, ' ');
    }
    if (bytes.length > 0) text += utf8.decode(Uint8Array.from(bytes));
    return text;
  }

  idToPiece(id: number): string {
    this.checkId(id);
    return this.model.pieces[id] ?? this.added[id - this.model.pieces.length]!.content;
  }

  /** The id of a vocabulary entry or added token, matched whole; null when there is none. */
  tokenToId(token: string): number | null {
    const id = this.addedIds.get(token) ?? this.model.pieces.indexOf(token);
    return id >= 0 ? id : null;
  }

  isSpecial(id: number): boolean {
    if (id >= this.model.pieces.length) return this.added[id - this.model.pieces.length]?.special ?? false;
    const type = this.model.types[id];
    return type === PieceType.Control || type === PieceType.Unknown;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new UserError(`token id ${id} is outside the vocabulary of ${this.source} (0..${this.vocabSize - 1})`);
    }
  }
}

function checkSupported(model: SentencePieceModel, source: string): void {
  const fix = 'use a folder with a tokenizer.json instead';
  if (model.modelType !== 'bpe') throw new UserError(`${source} is a SentencePiece ${model.modelType} model; only BPE models (LLaMA) are read directly: ${fix}`);
  if (model.normalizer.hasCharsmap) throw new UserError(`${source} uses the "${model.normalizer.name}" normalization map, which is not implemented: ${fix}`);
  if (model.treatWhitespaceAsSuffix) throw new UserError(`${source} treats whitespace as a suffix, which is not implemented: ${fix}`);
}
