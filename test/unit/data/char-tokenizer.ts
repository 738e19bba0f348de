// Test helper: a Tokenizer with one id per character (code point + 3; BOS 1, EOS 2, UNK 0), so data
// pipeline tests can count tokens by eye. Not a real tokenizer.

import type { DecodeOptions, EncodeOptions, Tokenizer } from '../../../src/tokenizer/tokenizer.ts';

export class CharTokenizer implements Tokenizer {
  readonly source = 'chars';
  readonly vocabSize = 0x110000 + 3;
  readonly bosId = 1;
  readonly eosId = 2;
  readonly padId = null;
  readonly unkId = 0;
  readonly addBosToken = true;
  readonly addEosToken = false;

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids = [...text].map((c) => c.codePointAt(0)! + 3);
    if (options.addBos ?? this.addBosToken) ids.unshift(this.bosId);
    if (options.addEos ?? this.addEosToken) ids.push(this.eosId);
    return ids;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    return ids.map((id) => this.idToPiece(id)).filter((p, i) => !(options.skipSpecialTokens && this.isSpecial(ids[i]!))).join('');
  }

  idToPiece(id: number): string {
    return ['<unk>', '<s>', '</s>'][id] ?? String.fromCodePoint(id - 3);
  }

  isSpecial(id: number): boolean {
    return id < 3;
  }
}
