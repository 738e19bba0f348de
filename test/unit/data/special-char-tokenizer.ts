// Test helper: a Tokenizer with one id per character (code point + 1000) that also knows a few special tokens as
// whole strings with small ids (as a tokenizer.json with added tokens does), so chat-template tests can derive token
// ids and label masks by hand. Not a real tokenizer.

import type { DecodeOptions, EncodeOptions, Tokenizer } from '../../../src/tokenizer/tokenizer.ts';

const OFFSET = 1000;

export class SpecialCharTokenizer implements Tokenizer {
  readonly source = 'chars+specials';
  readonly vocabSize = 0x110000 + OFFSET;
  readonly padId = null;
  readonly unkId = null;
  readonly addBosToken = true;
  readonly addEosToken = false;
  private readonly pattern: RegExp;

  /** `specials`: text → id (below 1000); the BOS and EOS are two of them. */
  constructor(private readonly specials: Record<string, number>, readonly bosId: number, readonly eosId: number) {
    const escaped = Object.keys(specials).sort((a, b) => b.length - a.length).map((s) => s.replace(/[|[\]\\]/g, '\\$&'));
    this.pattern = new RegExp(`(${escaped.join('|')})`);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids = text.split(this.pattern).flatMap((part, i) => (i % 2 === 1 ? [this.specials[part]!] : [...part].map((c) => c.codePointAt(0)! + OFFSET)));
    if (options.addBos ?? this.addBosToken) ids.unshift(this.bosId);
    if (options.addEos ?? this.addEosToken) ids.push(this.eosId);
    return ids;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    return ids.filter((id) => !(options.skipSpecialTokens && this.isSpecial(id))).map((id) => this.idToPiece(id)).join('');
  }

  idToPiece(id: number): string {
    return id >= OFFSET ? String.fromCodePoint(id - OFFSET) : (Object.entries(this.specials).find(([, v]) => v === id)?.[0] ?? '<?>');
  }

  isSpecial(id: number): boolean {
    return id < OFFSET;
  }
}
