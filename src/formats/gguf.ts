// GGUF v3, the file format of llama.cpp: its constants (metadata value types, ggml tensor types and their
// block sizes) and a reader that opens a file's header (metadata, tensor infos) and reads one tensor's bytes
// on demand. Not a writer (gguf-write.ts) and not the quantization math (gguf-quant.ts).

import { openAndParse } from '../util/open-file.ts';
import { closeSync, fstatSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { readRange } from '../util/read-range.ts';

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Metadata value types, by their numbers in the file. */
export const enum GgufValueType {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
}

export type GgufScalar = number | bigint | boolean | string;

/** A typed metadata value; arrays carry their element type. */
export type GgufValue =
  | { type: Exclude<GgufValueType, GgufValueType.ARRAY>; value: GgufScalar }
  | { type: GgufValueType.ARRAY; itemType: Exclude<GgufValueType, GgufValueType.ARRAY>; value: GgufScalar[] };

/** The ggml tensor types this toolkit writes or reads, with their numbers. */
export type GgmlType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q4_K' | 'Q5_K' | 'Q6_K';

export const GGML_TYPE_ID: Readonly<Record<GgmlType, number>> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30 };

/** Elements per block and bytes per block. */
export const GGML_BLOCK: Readonly<Record<GgmlType, { size: number; bytes: number }>> = {
  F32: { size: 1, bytes: 4 }, F16: { size: 1, bytes: 2 }, BF16: { size: 1, bytes: 2 },
  Q8_0: { size: 32, bytes: 34 }, Q4_0: { size: 32, bytes: 18 }, Q4_K: { size: 256, bytes: 144 },
  Q5_K: { size: 256, bytes: 176 }, Q6_K: { size: 256, bytes: 210 },
};

/** Bytes of a tensor of `type` whose rows are `shape.at(-1)` elements (rows must fill whole blocks). */
export function ggmlByteSize(type: GgmlType, shape: readonly number[]): number {
  const { size, bytes } = GGML_BLOCK[type];
  const n = shape.reduce((a, b) => a * b, 1);
  if ((shape.at(-1) ?? 1) % size) throw new Error(`a ${type} tensor needs rows that are a multiple of ${size} elements, got shape [${shape.join(', ')}]`);
  return (n / size) * bytes;
}

export interface GgufTensorInfo {
  name: string;
  /** numpy order (outermost first); the file stores the reverse (ggml's ne). */
  shape: number[];
  type: GgmlType;
  /** Absolute byte offset in the file. */
  offset: number;
  byteSize: number;
}

export class GgufFile {
  private fd: number | null;

  private constructor(
    readonly path: string,
    fd: number,
    readonly version: number,
    readonly metadata: ReadonlyMap<string, GgufValue>,
    readonly tensors: ReadonlyMap<string, GgufTensorInfo>,
  ) {
    this.fd = fd;
  }

  static open(path: string): GgufFile {
    return openAndParse(path, (fd) => {
      const h = readHeader(fd, path);
      return new GgufFile(path, fd, h.version, h.metadata, h.tensors);
    });
  }

  /** A metadata value without its type; undefined when absent. */
  get(key: string): GgufScalar | GgufScalar[] | undefined {
    return this.metadata.get(key)?.value;
  }

  /** One tensor's raw bytes. */
  readBytes(name: string): Uint8Array {
    const t = this.tensors.get(name);
    if (!t) throw new UserError(`${this.path} has no tensor named "${name}"`);
    if (this.fd === null) throw new Error(`${this.path} is closed`);
    return readRange(this.fd, t.offset, t.byteSize);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

const TYPE_BY_ID = new Map(Object.entries(GGML_TYPE_ID).map(([k, v]) => [v, k as GgmlType]));

function readHeader(fd: number, path: string) {
  const fileSize = fstatSync(fd).size;
  const bad = (what: string) => new UserError(`${path} is not a GGUF file this reader supports: ${what}`);
  let buf = readRange(fd, 0, Math.min(fileSize, 1 << 20));
  let view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  const need = (n: number) => {
    if (pos + n <= buf.length) return;
    if (pos + n > fileSize) throw bad('the header runs past the end of the file');
    buf = readRange(fd, 0, Math.min(fileSize, Math.max(pos + n, buf.length * 2)));
    view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  };
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const u64 = () => {
    need(8);
    pos += 8;
    const v = view.getBigUint64(pos - 8, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`a count or offset of ${v} is too large`);
    return Number(v);
  };
  const str = () => {
    const n = u64();
    need(n);
    pos += n;
    return new TextDecoder('utf-8').decode(buf.subarray(pos - n, pos));
  };
  const scalar = (type: number): GgufScalar => {
    const sizes: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
    if (type === GgufValueType.STRING) return str();
    const n = sizes[type];
    if (n === undefined) throw bad(`unknown metadata value type ${type}`);
    need(n);
    pos += n;
    const at = pos - n;
    switch (type) {
      case 0: return view.getUint8(at);
      case 1: return view.getInt8(at);
      case 2: return view.getUint16(at, true);
      case 3: return view.getInt16(at, true);
      case 4: return view.getUint32(at, true);
      case 5: return view.getInt32(at, true);
      case 6: return view.getFloat32(at, true);
      case 7: return view.getUint8(at) !== 0;
      case 10: return view.getBigUint64(at, true);
      case 11: return view.getBigInt64(at, true);
      default: return view.getFloat64(at, true);
    }
  };

  if (fileSize < 24 || u32() !== GGUF_MAGIC) throw bad('it does not start with "GGUF"');
  const version = u32();
  if (version !== 2 && version !== 3) throw bad(`version ${version} (supported: 2, 3)`);
  const tensorCount = u64();
  const kvCount = u64();
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = str();
    const type = u32();
    if (type === GgufValueType.ARRAY) {
      const itemType = u32();
      const n = u64();
      const value: GgufScalar[] = [];
      for (let j = 0; j < n; j++) value.push(scalar(itemType));
      metadata.set(key, { type, itemType, value } as GgufValue);
    } else {
      metadata.set(key, { type, value: scalar(type) } as GgufValue);
    }
  }
  const infos: { name: string; shape: number[]; type: GgmlType; rel: number }[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = str();
    const dims = u32();
    const ne: number[] = [];
    for (let d = 0; d < dims; d++) ne.push(u64());
    const typeId = u32();
    const type = TYPE_BY_ID.get(typeId);
    if (!type) throw bad(`tensor "${name}" has ggml type ${typeId}, which this reader does not know`);
    infos.push({ name, shape: ne.reverse(), type, rel: u64() });
  }
  const alignment = Number(metadata.get('general.alignment')?.value ?? GGUF_DEFAULT_ALIGNMENT);
  const dataStart = Math.ceil(pos / alignment) * alignment;
  const tensors = new Map<string, GgufTensorInfo>();
  for (const t of infos) {
    const byteSize = ggmlByteSize(t.type, t.shape);
    const offset = dataStart + t.rel;
    if (offset + byteSize > fileSize) throw bad(`tensor "${t.name}" runs past the end of the file`);
    tensors.set(t.name, { name: t.name, shape: t.shape, type: t.type, offset, byteSize });
  }
  return { version, metadata, tensors };
}
