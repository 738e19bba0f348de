// Incremental decoding for streaming generation: feed ids one at a time, get text as soon as it is
// complete. Holds back text until its UTF-8 characters are whole; the concatenated output equals
// decode(all ids). Works for any Tokenizer by re-decoding a short window of recent ids.

import type { DecodeOptions, Tokenizer } from './tokenizer.ts';

export class StreamDecoder {
  private readonly ids: number[] = [];
  private prefixOffset = 0; // the window starts here: one step of context so leading spaces decode right
  private readOffset = 0; // text of ids before this has been emitted

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly options: DecodeOptions = { skipSpecialTokens: true },
  ) {}

  /** Adds one id; returns the newly completed text (often '', never half a character). */
  push(id: number): string {
    this.ids.push(id);
    const emitted = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset), this.options);
    const text = this.tokenizer.decode(this.ids.slice(this.prefixOffset), this.options);
    if (text.length <= emitted.length || text.endsWith('\uFFFD')) return '';
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return text.slice(emitted.length);
  }

  /** Whatever is still held back (an incomplete character decodes to U+FFFD). */
  flush(): string {
    const emitted = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset), this.options);
    const text = this.tokenizer.decode(this.ids.slice(this.prefixOffset), this.options);
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return text.slice(emitted.length);
  }
}
