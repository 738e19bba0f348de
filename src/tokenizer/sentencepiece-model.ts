// Reads a SentencePiece `tokenizer.model` (the ModelProto protobuf) into typed arrays and flags.
// Only the fields encoding and decoding need; training options are skipped. Not the encoder itself.

import { UserError } from '../errors.ts';
import { readFields, WireType } from './protobuf.ts';

export const enum PieceType {
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
}

export type SentencePieceModelType = 'unigram' | 'bpe' | 'word' | 'char';

export interface NormalizerSpec {
  name: string;
  hasCharsmap: boolean;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

export interface SentencePieceModel {
  pieces: string[];
  scores: Float32Array;
  types: Uint8Array; // PieceType per id
  modelType: SentencePieceModelType;
  byteFallback: boolean;
  treatWhitespaceAsSuffix: boolean;
  unkId: number;
  bosId: number; // -1 when the model has none
  eosId: number;
  padId: number;
  normalizer: NormalizerSpec;
}

const MODEL_TYPES: Record<number, SentencePieceModelType> = { 1: 'unigram', 2: 'bpe', 3: 'word', 4: 'char' };
const utf8 = new TextDecoder('utf-8');

/** Parses ModelProto bytes; `source` names the file in errors. */
export function parseSentencePieceModel(buf: Uint8Array, source: string): SentencePieceModel {
  const pieces: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  const model: SentencePieceModel = {
    pieces,
    scores: new Float32Array(0),
    types: new Uint8Array(0),
    modelType: 'unigram',
    byteFallback: false,
    treatWhitespaceAsSuffix: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    normalizer: { name: '', hasCharsmap: false, addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true },
  };
  try {
    readFields(buf, source, (f) => {
      if (f.wireType !== WireType.LengthDelimited) return;
      if (f.number === 1) readPiece(f.bytes, source, pieces, scores, types);
      else if (f.number === 2) readTrainerSpec(f.bytes, source, model);
      else if (f.number === 3) readNormalizerSpec(f.bytes, source, model.normalizer);
    });
  } catch (err) {
    throw new UserError(`${source} is not a SentencePiece model (${(err as Error).message})`);
  }
  if (pieces.length === 0) throw new UserError(`${source} is not a SentencePiece model: it holds no pieces`);
  model.scores = Float32Array.from(scores);
  model.types = Uint8Array.from(types);
  return model;
}

function readPiece(buf: Uint8Array, source: string, pieces: string[], scores: number[], types: number[]): void {
  let piece = '';
  let score = 0;
  let type: number = PieceType.Normal;
  readFields(buf, source, (f) => {
    if (f.number === 1 && f.wireType === WireType.LengthDelimited) piece = utf8.decode(f.bytes);
    else if (f.number === 2 && f.wireType === WireType.Fixed32) score = f.float;
    else if (f.number === 3 && f.wireType === WireType.Varint) type = f.varint;
  });
  pieces.push(piece);
  scores.push(score);
  types.push(type);
}

function readTrainerSpec(buf: Uint8Array, source: string, model: SentencePieceModel): void {
  readFields(buf, source, (f) => {
    if (f.wireType !== WireType.Varint) return;
    const int32 = f.varint | 0;
    switch (f.number) {
      case 3:
        model.modelType = MODEL_TYPES[int32] ?? 'unigram';
        break;
      case 24:
        model.treatWhitespaceAsSuffix = int32 !== 0;
        break;
      case 35:
        model.byteFallback = int32 !== 0;
        break;
      case 40:
        model.unkId = int32;
        break;
      case 41:
        model.bosId = int32;
        break;
      case 42:
        model.eosId = int32;
        break;
      case 43:
        model.padId = int32;
        break;
    }
  });
}

function readNormalizerSpec(buf: Uint8Array, source: string, spec: NormalizerSpec): void {
  readFields(buf, source, (f) => {
    if (f.number === 1 && f.wireType === WireType.LengthDelimited) spec.name = utf8.decode(f.bytes);
    else if (f.number === 2 && f.wireType === WireType.LengthDelimited) spec.hasCharsmap = f.bytes.length > 0;
    else if (f.wireType === WireType.Varint && f.number === 3) spec.addDummyPrefix = f.varint !== 0;
    else if (f.wireType === WireType.Varint && f.number === 4) spec.removeExtraWhitespaces = f.varint !== 0;
    else if (f.wireType === WireType.Varint && f.number === 5) spec.escapeWhitespaces = f.varint !== 0;
  });
}
