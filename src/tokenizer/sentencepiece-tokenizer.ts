// The Tokenizer for a SentencePiece `tokenizer.model` read directly (LLaMA 1/2): SentencePiece's
// identity normalizer (spaces to ▁, dummy prefix), BPE with byte fallback, and LlamaTokenizer-style
// decoding. Not for Unigram models or models with a precompiled normalization map.

import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
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

  constructor(
    private readonly model: SentencePieceModel,
    readonly source: string,
    settings: Partial<TokenizerSettings> = {},
  ) {
    checkSupported(model, source);
    this.bpe = new SentencePieceBpe(model);
    this.vocabSize = model.pieces.length;
    const known = (token: string | undefined) => (token === undefined ? undefined : model.pieces.indexOf(token));
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

  static fromFile(path: string, settings: Partial<TokenizerSettings> = {}): SentencePieceTokenizer {
    return new SentencePieceTokenizer(parseSentencePieceModel(readFileSync(path), path), path, settings);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    if ((options.addBos ?? this.addBosToken) && this.bosId !== null) ids.push(this.bosId);
    this.bpe.encode(this.normalize(text), ids);
    if (options.addEos ?? this.addEosToken) ids.push(this.eosId);
    return ids;
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
      if (this.byteValue[id]! >= 0) {
        bytes.push(this.byteValue[id]!);
        continue;
      }
      if (bytes.length > 0) {
        text += utf8.decode(Uint8Array.from(bytes));
        bytes = [];
      }
      if (this.isSpecial(id)) {
        if (!options.skipSpecialTokens) text += this.model.pieces[id];
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
    return this.model.pieces[id]!;
  }

  isSpecial(id: number): boolean {
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
