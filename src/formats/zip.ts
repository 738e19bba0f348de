// Reading a zip archive's central directory (zip64 included) and the bytes of its entries, as torch.save
// files need: entries are found by name and read on demand, a part of a stored entry without the rest.
// Written by hand because no npm zip library reads a byte range of a 4 GB+ entry without loading it whole.
// Not a writer (see zip-write.ts); encrypted entries and methods other than store/deflate are refused.

import { openAndParse } from '../util/open-file.ts';
import { closeSync, fstatSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { UserError } from '../errors.ts';
import { readRange } from '../util/read-range.ts';

export interface ZipEntry {
  name: string;
  method: number; // 0 stored, 8 deflated
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
const UTF8 = new TextDecoder();

export class ZipReader {
  private fd: number | null;
  private readonly dataOffsets = new Map<string, number>();

  private constructor(
    readonly path: string,
    fd: number,
    readonly size: number,
    private readonly entries: ReadonlyMap<string, ZipEntry>,
  ) {
    this.fd = fd;
  }

  static open(path: string): ZipReader {
    return openAndParse(path, (fd) => {
      const size = fstatSync(fd).size;
      return new ZipReader(path, fd, size, readCentralDirectory(fd, size, path));
    });
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  entry(name: string): ZipEntry {
    const e = this.entries.get(name);
    if (!e) throw new UserError(`${this.path} has no entry "${name}"`);
    return e;
  }

  /** The whole entry, inflated if it was deflated. */
  read(name: string): Uint8Array {
    const e = this.entry(name);
    return this.readPart(name, 0, e.size);
  }

  /** Bytes [offset, offset + length) of the entry's uncompressed content, in a buffer of their own. */
  readPart(name: string, offset: number, length: number): Uint8Array {
    const e = this.entry(name);
    if (offset < 0 || length < 0 || offset + length > e.size) {
      throw new UserError(`${this.path}: bytes [${offset}, ${offset + length}) are outside entry "${name}" of ${e.size} bytes`);
    }
    const start = this.dataOffset(e);
    if (e.method === 0) return readRange(this.fd!, start + offset, length);
    const inflated = this.inflate(e, readRange(this.fd!, start, e.compressedSize));
    return new Uint8Array(inflated.subarray(offset, offset + length)); // a copy, so the buffer is aligned
  }

  /** Inflates no further than one byte past the declared size, so a zip bomb costs no more memory than an honest entry. */
  private inflate(e: ZipEntry, compressed: Uint8Array): Buffer {
    const wrong = (what: string) => new UserError(`${this.path}: entry "${e.name}" ${what}, not the ${e.size} its directory declares: the file is damaged or forged`);
    let inflated: Buffer;
    try {
      inflated = inflateRawSync(compressed, { maxOutputLength: e.size + 1 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw wrong('inflates to more bytes');
      throw new UserError(`${this.path}: entry "${e.name}" does not inflate (${(err as Error).message}): the file is damaged`);
    }
    if (inflated.length !== e.size) throw wrong(`inflates to ${inflated.length} bytes`);
    return inflated;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /** Where the entry's data starts: after its local header, whose extra field differs from the central one. */
  private dataOffset(e: ZipEntry): number {
    if (this.fd === null) throw new Error(`${this.path} is closed`);
    const known = this.dataOffsets.get(e.name);
    if (known !== undefined) return known;
    const bad = (what: string) => new UserError(`${this.path} is not a valid zip file: entry "${e.name}" ${what}`);
    if (e.localHeaderOffset + 30 > this.size) throw bad('has its header past the end of the file');
    const h = view(readRange(this.fd, e.localHeaderOffset, 30));
    if (h.getUint32(0, true) !== SIG_LOCAL) throw bad('has no local header where the directory says');
    const start = e.localHeaderOffset + 30 + h.getUint16(26, true) + h.getUint16(28, true);
    if (start + e.compressedSize > this.size) throw bad('runs past the end of the file');
    this.dataOffsets.set(e.name, start);
    return start;
  }
}

function readCentralDirectory(fd: number, size: number, path: string): Map<string, ZipEntry> {
  const bad = (what: string) => new UserError(`${path} is not a valid zip file: ${what}`);
  if (size < EOCD_SIZE) throw bad(`it has only ${size} bytes`);
  const tailStart = Math.max(0, size - EOCD_SIZE - MAX_COMMENT);
  const tail = readRange(fd, tailStart, size - tailStart);
  const tv = view(tail);
  let eocd = -1;
  for (let i = tail.length - EOCD_SIZE; i >= 0; i--) {
    if (tv.getUint32(i, true) === SIG_EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad('no end-of-central-directory record (is it a zip archive?)');
  let count = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  if (eocd >= 20 && tv.getUint32(eocd - 20, true) === SIG_ZIP64_LOCATOR) {
    const z64Offset = u64(tv, eocd - 20 + 8);
    if (z64Offset + 56 > size) throw bad('its zip64 end record lies past the end of the file');
    const z = view(readRange(fd, z64Offset, 56));
    if (z.getUint32(0, true) !== SIG_ZIP64_EOCD) throw bad('its zip64 locator points at no zip64 end record');
    count = u64(z, 32);
    cdSize = u64(z, 40);
    cdOffset = u64(z, 48);
  }
  if (cdOffset + cdSize > size) throw bad(`its central directory [${cdOffset}, ${cdOffset + cdSize}) lies past the end of the file`);
  const cd = readRange(fd, cdOffset, cdSize);
  const cv = view(cd);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cv.getUint32(p, true) !== SIG_CENTRAL) throw bad(`central directory record ${i} is damaged`);
    const nameLength = cv.getUint16(p + 28, true);
    const extraLength = cv.getUint16(p + 30, true);
    const next = p + 46 + nameLength + extraLength + cv.getUint16(p + 32, true);
    if (next > cd.length) throw bad(`central directory record ${i} runs past the directory`);
    const name = UTF8.decode(cd.subarray(p + 46, p + 46 + nameLength));
    const entry: ZipEntry = {
      name,
      method: cv.getUint16(p + 10, true),
      compressedSize: cv.getUint32(p + 20, true),
      size: cv.getUint32(p + 24, true),
      localHeaderOffset: cv.getUint32(p + 42, true),
    };
    applyZip64Extra(entry, view(cd.subarray(p + 46 + nameLength, p + 46 + nameLength + extraLength)), bad);
    if (cv.getUint16(p + 8, true) & 1) throw bad(`entry "${name}" is encrypted`);
    if (entry.method !== 0 && entry.method !== 8) throw bad(`entry "${name}" uses compression method ${entry.method} (only stored and deflated are read)`);
    if (entry.localHeaderOffset + entry.compressedSize > size) throw bad(`entry "${name}" runs past the end of the file`);
    entries.set(name, entry);
    p = next;
  }
  return entries;
}

/** Fields stored as 0xFFFFFFFF take their real value from the zip64 extra field, in this order. */
function applyZip64Extra(e: ZipEntry, extra: DataView, bad: (what: string) => UserError): void {
  const wanted = (['size', 'compressedSize', 'localHeaderOffset'] as const).filter((k) => e[k] === 0xffffffff);
  if (wanted.length === 0) return;
  for (let p = 0; p + 4 <= extra.byteLength; ) {
    const id = extra.getUint16(p, true);
    const length = extra.getUint16(p + 2, true);
    if (id === 0x0001) {
      if (length < wanted.length * 8) break;
      wanted.forEach((k, i) => (e[k] = u64(extra, p + 4 + i * 8)));
      return;
    }
    p += 4 + length;
  }
  throw bad(`entry "${e.name}" needs a zip64 extra field and has none`);
}

function u64(v: DataView, at: number): number {
  const n = v.getBigUint64(at, true);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new UserError(`zip field value ${n} is too large`);
  return Number(n);
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
