// The Tokenizer for a Hugging Face `tokenizer.json` (+ tokenizer_config.json), run by
// @huggingface/tokenizers. BOS/EOS are added here, not by the file's post-processor, so the flags rule.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as LibTokenizer } from '@huggingface/tokenizers';
import { UserError } from '../errors.ts';
import { tokenizerJsonWith, type AddedToken } from './added-tokens.ts';
import { readTokenizerSettings } from './tokenizer-config.ts';
import type { DecodeOptions, EncodeOptions, Tokenizer } from './tokenizer.ts';

export class HfTokenizer implements Tokenizer {
  readonly source: string;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number;
  readonly padId: number | null;
  readonly unkId: number | null;
  readonly addBosToken: boolean;
  readonly addEosToken: boolean;
  private readonly lib: LibTokenizer;
  private readonly specialIds: Set<number>;
  private readonly cleanUpSpaces: boolean;

  /** Reads `dir`/tokenizer.json and, when present, `dir`/tokenizer_config.json; `added`: new tokens put in its added_tokens. */
  constructor(dir: string, added: readonly AddedToken[] = []) {
    this.source = join(dir, 'tokenizer.json');
    const settings = readTokenizerSettings(dir);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(this.source, 'utf8'));
      if (added.length) json = tokenizerJsonWith(json as Record<string, unknown>, added);
      this.lib = new LibTokenizer(json as object, settings.rawConfig);
    } catch (err) {
      throw new UserError(`${this.source} could not be read as a tokenizer: ${(err as Error).message}`);
    }
    const vocab = this.lib.get_vocab(true);
    this.vocabSize = Math.max(...vocab.values()) + 1;
    this.specialIds = new Set([...this.lib.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) => id));
    const idOf = (token: string | undefined) => (token === undefined ? null : (this.lib.token_to_id(token) ?? null));
    this.bosId = idOf(settings.bosToken);
    const eos = idOf(settings.eosToken);
    if (eos === null) throw new UserError(`${dir} names no eos_token in tokenizer_config.json that tokenizer.json knows`);
    this.eosId = eos;
    this.padId = idOf(settings.padToken);
    this.unkId = idOf(settings.unkToken);
    this.cleanUpSpaces = settings.cleanUpTokenizationSpaces ?? false;
    // Without explicit flags, do what the file's post-processor does.
    const withSpecial = this.lib.encode('a').ids;
    const plain = this.lib.encode('a', { add_special_tokens: false }).ids;
    this.addBosToken = settings.addBosToken ?? (this.bosId !== null && withSpecial[0] === this.bosId && plain[0] !== this.bosId);
    this.addEosToken = settings.addEosToken ?? (withSpecial.at(-1) === this.eosId && plain.at(-1) !== this.eosId);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids = this.lib.encode(text, { add_special_tokens: false }).ids;
    if ((options.addBos ?? this.addBosToken) && this.bosId !== null) ids.unshift(this.bosId);
    if (options.addEos ?? this.addEosToken) ids.push(this.eosId);
    return ids;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    ids.forEach((id) => this.checkId(id));
    if (ids.length === 0) return '';
    return this.lib.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }

  /** The id of a vocabulary entry or added token, matched whole; null when there is none. */
  tokenToId(token: string): number | null {
    return this.lib.token_to_id(token) ?? null;
  }

  idToPiece(id: number): string {
    this.checkId(id);
    return this.lib.id_to_token(id) ?? '';
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new UserError(`token id ${id} is outside the vocabulary of ${this.source} (0..${this.vocabSize - 1})`);
    }
  }
}
