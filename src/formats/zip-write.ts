// Producing a zip archive of stored (uncompressed) entries as a stream of chunks, laid out as torch.save
// lays it out: each entry's data starts on a 64-byte boundary (padding in an "FB" extra field), zip64
// records wherever a size or offset needs them. Not a reader (see zip.ts), and no compression.

import * as zlib from 'node:zlib';

export interface ZipInput {
  name: string;
  /** Produced only when the writer reaches the entry. */
  data(): Uint8Array | Promise<Uint8Array>;
}

export interface ZipOptions {
  align?: number; // data alignment in bytes (torch: 64)
  forceZip64?: boolean; // zip64 records for every entry, needed or not
}

const LIMIT32 = 0xffffffff;
const UTF8_NAMES = 0x0800;

interface Written {
  name: Uint8Array;
  crc: number;
  size: number;
  offset: number;
}

/** The archive's bytes, chunk by chunk; entries are loaded one at a time. */
export async function* zipStored(inputs: Iterable<ZipInput>, options: ZipOptions = {}): AsyncGenerator<Uint8Array> {
  const align = options.align ?? 64;
  const force = options.forceZip64 ?? false;
  const written: Written[] = [];
  let offset = 0;
  for (const input of inputs) {
    const data = await input.data();
    const name = Buffer.from(input.name, 'utf8');
    const entry = { name, crc: crc32(data), size: data.byteLength, offset };
    const header = localHeader(entry, align, force || data.byteLength >= LIMIT32);
    yield header;
    yield data;
    written.push(entry);
    offset += header.byteLength + data.byteLength;
  }
  const cdOffset = offset;
  const records = written.map((e) => centralRecord(e, force));
  yield* records;
  const cdSize = records.reduce((n, r) => n + r.byteLength, 0);
  if (force || written.length >= 0xffff || cdOffset >= LIMIT32 || cdSize >= LIMIT32) {
    yield zip64End(written.length, cdSize, cdOffset);
  }
  yield endRecord(written.length, cdSize, cdOffset);
}

function localHeader(e: Written, align: number, zip64: boolean): Uint8Array {
  const zip64Extra = zip64 ? 20 : 0;
  const unpadded = e.offset + 30 + e.name.byteLength + zip64Extra + 4;
  const padding = (align - (unpadded % align)) % align;
  const h = Buffer.alloc(30 + e.name.byteLength + zip64Extra + 4 + padding);
  h.writeUInt32LE(0x04034b50, 0);
  h.writeUInt16LE(zip64 ? 45 : 20, 4);
  h.writeUInt16LE(UTF8_NAMES, 6);
  h.writeUInt32LE(e.crc, 14);
  h.writeUInt32LE(zip64 ? LIMIT32 : e.size, 18);
  h.writeUInt32LE(zip64 ? LIMIT32 : e.size, 22);
  h.writeUInt16LE(e.name.byteLength, 26);
  h.writeUInt16LE(zip64Extra + 4 + padding, 28);
  let p = 30 + e.name.byteLength;
  e.name.forEach((b, i) => (h[30 + i] = b));
  if (zip64) {
    h.writeUInt16LE(0x0001, p);
    h.writeUInt16LE(16, p + 2);
    h.writeBigUInt64LE(BigInt(e.size), p + 4);
    h.writeBigUInt64LE(BigInt(e.size), p + 12);
    p += 20;
  }
  h.write('FB', p, 'latin1');
  h.writeUInt16LE(padding, p + 2);
  h.fill('Z', p + 4);
  return h;
}

function centralRecord(e: Written, force: boolean): Uint8Array {
  const big = (v: number) => force || v >= LIMIT32;
  const zip64Values = [e.size, e.size, e.offset].filter(big);
  const extra = zip64Values.length ? 4 + 8 * zip64Values.length : 0;
  const r = Buffer.alloc(46 + e.name.byteLength + extra);
  r.writeUInt32LE(0x02014b50, 0);
  r.writeUInt16LE(45, 4);
  r.writeUInt16LE(zip64Values.length ? 45 : 20, 6);
  r.writeUInt16LE(UTF8_NAMES, 8);
  r.writeUInt32LE(e.crc, 16);
  r.writeUInt32LE(big(e.size) ? LIMIT32 : e.size, 20);
  r.writeUInt32LE(big(e.size) ? LIMIT32 : e.size, 24);
  r.writeUInt16LE(e.name.byteLength, 28);
  r.writeUInt16LE(extra, 30);
  r.writeUInt32LE(big(e.offset) ? LIMIT32 : e.offset, 42);
  e.name.forEach((b, i) => (r[46 + i] = b));
  if (extra) {
    const p = 46 + e.name.byteLength;
    r.writeUInt16LE(0x0001, p);
    r.writeUInt16LE(extra - 4, p + 2);
    zip64Values.forEach((v, i) => r.writeBigUInt64LE(BigInt(v), p + 4 + 8 * i));
  }
  return r;
}

/** The zip64 end-of-central-directory record followed by its locator. */
function zip64End(count: number, cdSize: number, cdOffset: number): Uint8Array {
  const r = Buffer.alloc(56 + 20);
  r.writeUInt32LE(0x06064b50, 0);
  r.writeBigUInt64LE(44n, 4);
  r.writeUInt16LE(45, 12);
  r.writeUInt16LE(45, 14);
  r.writeBigUInt64LE(BigInt(count), 24);
  r.writeBigUInt64LE(BigInt(count), 32);
  r.writeBigUInt64LE(BigInt(cdSize), 40);
  r.writeBigUInt64LE(BigInt(cdOffset), 48);
  r.writeUInt32LE(0x07064b50, 56);
  r.writeBigUInt64LE(BigInt(cdOffset + cdSize), 64);
  r.writeUInt32LE(1, 72);
  return r;
}

function endRecord(count: number, cdSize: number, cdOffset: number): Uint8Array {
  const r = Buffer.alloc(22);
  r.writeUInt32LE(0x06054b50, 0);
  r.writeUInt16LE(Math.min(count, 0xffff), 8);
  r.writeUInt16LE(Math.min(count, 0xffff), 10);
  r.writeUInt32LE(Math.min(cdSize, LIMIT32), 12);
  r.writeUInt32LE(Math.min(cdOffset, LIMIT32), 16);
  return r;
}

// zlib.crc32 arrived in Node 20.15; the table is the fallback for older Node 20 releases.
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
let crcTable: Uint32Array | undefined;

function crc32(data: Uint8Array): number {
  if (nativeCrc32) return nativeCrc32(data);
  crcTable ??= Uint32Array.from({ length: 256 }, (_, n) => {
    for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1;
    return n >>> 0;
  });
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
