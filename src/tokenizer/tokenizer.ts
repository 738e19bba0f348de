// The Tokenizer interface every tokenizer backend implements (SentencePiece tokenizer.model, or
// tokenizer.json through @huggingface/tokenizers). Types only; loading lives in load.ts.

export interface EncodeOptions {
  /** Prepend BOS; defaults to the tokenizer's addBosToken. */
  addBos?: boolean;
  /** Append EOS; defaults to the tokenizer's addEosToken. */
  addEos?: boolean;
}

export interface DecodeOptions {
  /** Leave out BOS/EOS/UNK and other special tokens instead of printing their text. */
  skipSpecialTokens?: boolean;
}

export interface Tokenizer {
  /** Where it was read from, e.g. `model/tokenizer.model`. */
  readonly source: string;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number;
  /** The tokenizer's own pad token; alpaca-lora pads with 0 when this is null. */
  readonly padId: number | null;
  readonly unkId: number | null;
  /** Defaults for encode(), from tokenizer_config.json, else LlamaTokenizer's (BOS yes, EOS no). */
  readonly addBosToken: boolean;
  readonly addEosToken: boolean;

  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: readonly number[], options?: DecodeOptions): string;
  /** The vocabulary entry of an id, e.g. `▁Hello` or `<0x0A>`. */
  idToPiece(id: number): string;
  isSpecial(id: number): boolean;
}
