// Writing GGUF v3 files: the header (typed metadata, tensor infos with aligned offsets), then each tensor's
// bytes as the writer reaches it, so a large model is never held whole; written atomically. Not a reader
// (gguf.ts) and not what llama.cpp expects of a model (export/gguf-model.ts).

import { writeChunksAtomic } from '../util/atomic-write.ts';
import { GGML_TYPE_ID, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION, GgufValueType, ggmlByteSize } from './gguf.ts';
import type { GgmlType, GgufScalar, GgufValue } from './gguf.ts';

export interface GgufTensorOut {
  type: GgmlType;
  /** numpy order (outermost first). */
  shape: number[];
  /** The tensor's bytes in its ggml type, produced when the writer reaches it. */
  load(): Uint8Array | Promise<Uint8Array>;
}

type Scalar = Exclude<GgufValueType, GgufValueType.ARRAY>;

/** Typed metadata values, for building a metadata map. */
export const gguf = {
  u32: (value: number): GgufValue => ({ type: GgufValueType.U32, value }),
  i32: (value: number): GgufValue => ({ type: GgufValueType.I32, value }),
  f32: (value: number): GgufValue => ({ type: GgufValueType.F32, value }),
  bool: (value: boolean): GgufValue => ({ type: GgufValueType.BOOL, value }),
  str: (value: string): GgufValue => ({ type: GgufValueType.STRING, value }),
  array: (itemType: Scalar, value: GgufScalar[]): GgufValue => ({ type: GgufValueType.ARRAY, itemType, value }),
};

/** Writes `metadata` (in its order) and `tensors` (in their order) to `path`. */
export async function writeGguf(path: string, metadata: ReadonlyMap<string, GgufValue>, tensors: ReadonlyMap<string, GgufTensorOut>): Promise<void> {
  const alignment = Number(metadata.get('general.alignment')?.value ?? GGUF_DEFAULT_ALIGNMENT);
  const header = new ByteWriter();
  header.u32(GGUF_MAGIC);
  header.u32(GGUF_VERSION);
  header.u64(tensors.size);
  header.u64(metadata.size);
  for (const [key, v] of metadata) {
    header.str(key);
    header.u32(v.type);
    if (v.type === GgufValueType.ARRAY) {
      header.u32(v.itemType);
      header.u64(v.value.length);
      for (const item of v.value) header.scalar(v.itemType, item);
    } else {
      header.scalar(v.type, v.value);
    }
  }
  const sizes: number[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const size = ggmlByteSize(t.type, t.shape);
    header.str(name);
    header.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) header.u64(d);
    header.u32(GGML_TYPE_ID[t.type]);
    header.u64(offset);
    sizes.push(size);
    offset += pad(size, alignment);
  }
  await writeChunksAtomic(path, chunks(header.bytes(alignment), [...tensors], sizes, alignment));
}

async function* chunks(header: Uint8Array, tensors: [string, GgufTensorOut][], sizes: number[], alignment: number): AsyncGenerator<Uint8Array> {
  yield header;
  for (const [i, [name, t]] of tensors.entries()) {
    const data = await t.load();
    if (data.byteLength !== sizes[i]) throw new Error(`GGUF tensor "${name}": ${data.byteLength} bytes for [${t.shape}] of ${t.type} (needs ${sizes[i]})`);
    yield data;
    const padding = pad(data.byteLength, alignment) - data.byteLength;
    if (padding) yield new Uint8Array(padding);
  }
}

function pad(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** A growing little-endian buffer for the header. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  private pos = 0;

  u32(v: number): void {
    this.room(4).setUint32(this.pos - 4, v, true);
  }

  u64(v: number | bigint): void {
    this.room(8).setBigUint64(this.pos - 8, BigInt(v), true);
  }

  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.room(b.length);
    this.buf.set(b, this.pos - b.length);
  }

  scalar(type: Scalar, v: GgufScalar): void {
    switch (type) {
      case GgufValueType.U8: this.room(1).setUint8(this.pos - 1, Number(v)); break;
      case GgufValueType.I8: this.room(1).setInt8(this.pos - 1, Number(v)); break;
      case GgufValueType.U16: this.room(2).setUint16(this.pos - 2, Number(v), true); break;
      case GgufValueType.I16: this.room(2).setInt16(this.pos - 2, Number(v), true); break;
      case GgufValueType.U32: this.room(4).setUint32(this.pos - 4, Number(v), true); break;
      case GgufValueType.I32: this.room(4).setInt32(this.pos - 4, Number(v), true); break;
      case GgufValueType.F32: this.room(4).setFloat32(this.pos - 4, Number(v), true); break;
      case GgufValueType.BOOL: this.room(1).setUint8(this.pos - 1, v ? 1 : 0); break;
      case GgufValueType.STRING: this.str(String(v)); break;
      case GgufValueType.U64: this.room(8).setBigUint64(this.pos - 8, BigInt(v), true); break;
      case GgufValueType.I64: this.room(8).setBigInt64(this.pos - 8, BigInt(v), true); break;
      case GgufValueType.F64: this.room(8).setFloat64(this.pos - 8, Number(v), true); break;
    }
  }

  /** The bytes written, zero-padded to `alignment`. */
  bytes(alignment: number): Uint8Array {
    const out = new Uint8Array(pad(this.pos, alignment));
    out.set(this.buf.subarray(0, this.pos));
    return out;
  }

  /** Advances by n bytes (growing as needed) and returns the view to write them through. */
  private room(n: number): DataView {
    if (this.pos + n > this.buf.length) {
      const grown = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
      grown.set(this.buf);
      this.buf = grown;
      this.view = new DataView(grown.buffer);
    }
    this.pos += n;
    return this.view;
  }
}
