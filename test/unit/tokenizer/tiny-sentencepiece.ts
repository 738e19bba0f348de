// Test helper: writes a small SentencePiece ModelProto by hand, so the reader and the BPE can be
// tested on vocabularies whose every merge is known. Not used outside tests.

export interface TinyPiece {
  piece: string;
  score?: number;
  type?: number; // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
}

export interface TinyModelOptions {
  modelType?: number; // 1 unigram, 2 bpe
  byteFallback?: boolean;
  addDummyPrefix?: boolean;
  removeExtraWhitespaces?: boolean;
  charsmap?: Uint8Array;
}

/** <unk>, <s>, </s>, then (with byte fallback) the 256 byte pieces, then `pieces`. */
export function tinyModel(pieces: TinyPiece[], options: TinyModelOptions = {}): Uint8Array {
  const byteFallback = options.byteFallback ?? true;
  const all: TinyPiece[] = [
    { piece: '<unk>', type: 2 },
    { piece: '<s>', type: 3 },
    { piece: '</s>', type: 3 },
    ...(byteFallback ? Array.from({ length: 256 }, (_, b) => ({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, type: 6 })) : []),
    ...pieces,
  ];
  const out: number[] = [];
  for (const p of all) {
    const body: number[] = [];
    bytesField(body, 1, new TextEncoder().encode(p.piece));
    floatField(body, 2, p.score ?? 0);
    if (p.type !== undefined && p.type !== 1) varintField(body, 3, p.type);
    bytesField(out, 1, Uint8Array.from(body));
  }
  const trainer: number[] = [];
  varintField(trainer, 3, options.modelType ?? 2);
  varintField(trainer, 35, byteFallback ? 1 : 0);
  varintField(trainer, 40, 0);
  varintField(trainer, 41, 1);
  varintField(trainer, 42, 2);
  varintField(trainer, 43, -1);
  bytesField(out, 2, Uint8Array.from(trainer));
  const normalizer: number[] = [];
  bytesField(normalizer, 1, new TextEncoder().encode('identity'));
  bytesField(normalizer, 2, options.charsmap ?? new Uint8Array(0));
  varintField(normalizer, 3, (options.addDummyPrefix ?? true) ? 1 : 0);
  varintField(normalizer, 4, options.removeExtraWhitespaces ? 1 : 0);
  bytesField(out, 3, Uint8Array.from(normalizer));
  return Uint8Array.from(out);
}

/** Id of a piece given after the fixed head (3 specials, plus 256 bytes with byte fallback). */
export function tinyId(index: number, byteFallback = true): number {
  return 3 + (byteFallback ? 256 : 0) + index;
}

function varint(out: number[], value: number): void {
  let v = BigInt.asUintN(64, BigInt(value)); // negative int32 values take 10 bytes, as protobuf writes them
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? b | 0x80 : b);
  } while (v > 0n);
}

function varintField(out: number[], field: number, value: number): void {
  varint(out, field << 3);
  varint(out, value);
}

function bytesField(out: number[], field: number, bytes: Uint8Array): void {
  varint(out, (field << 3) | 2);
  varint(out, bytes.length);
  out.push(...bytes);
}

function floatField(out: number[], field: number, value: number): void {
  varint(out, (field << 3) | 5);
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, value, true);
  out.push(...b);
}
