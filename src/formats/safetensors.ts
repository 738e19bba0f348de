// Reading .safetensors files: the 8-byte header length and the JSON header are read and checked against
// the file size when the file is opened; each tensor's bytes are read on demand into a buffer of its own.
// Not a writer (see safetensors-write.ts) and no memory mapping: a 13 GB file streams tensor by tensor.

import { openAndParse } from '../util/open-file.ts';
import { closeSync, fstatSync } from 'node:fs';
import { numel } from '../engine/tensor.ts';
import { UserError } from '../errors.ts';
import { readRange } from '../util/read-range.ts';
import { ITEM_SIZE, isStorageDType, viewAs } from './host-tensor.ts';
import type { HostTensor, StorageDType } from './host-tensor.ts';

/** Where one tensor lives: absolute byte range [begin, end) in the file. */
export interface SafetensorsEntry {
  dtype: StorageDType;
  shape: number[];
  begin: number;
  end: number;
}

export interface TensorInfo {
  dtype: StorageDType;
  shape: number[];
}

const MAX_HEADER_BYTES = 100_000_000; // the reference library's limit

export class SafetensorsFile {
  private fd: number | null;

  private constructor(
    readonly path: string,
    fd: number,
    readonly metadata: Readonly<Record<string, string>> | null,
    private readonly entries: ReadonlyMap<string, SafetensorsEntry>,
  ) {
    this.fd = fd;
  }

  /** Opens and validates `path`, reading only its header. */
  static open(path: string): SafetensorsFile {
    return openAndParse(path, (fd) => {
      const { metadata, entries } = readHeader(fd, path);
      return new SafetensorsFile(path, fd, metadata, entries);
    });
  }

  /** Tensor names in file order. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): TensorInfo {
    const e = this.entry(name);
    return { dtype: e.dtype, shape: [...e.shape] };
  }

  /** Reads one tensor's bytes into a buffer of its own. */
  read(name: string): HostTensor {
    const e = this.entry(name);
    if (this.fd === null) throw new Error(`${this.path} is closed`);
    const bytes = readRange(this.fd, e.begin, e.end - e.begin);
    return { dtype: e.dtype, shape: [...e.shape], data: viewAs(e.dtype, bytes.buffer, 0, numel(e.shape)) };
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private entry(name: string): SafetensorsEntry {
    const e = this.entries.get(name);
    if (!e) throw new UserError(`${this.path} has no tensor named "${name}"`);
    return e;
  }
}

/** Every tensor of a (small) file, in file order. */
export function readSafetensors(path: string): Map<string, HostTensor> {
  const file = SafetensorsFile.open(path);
  try {
    return new Map(file.names().map((name) => [name, file.read(name)]));
  } finally {
    file.close();
  }
}

function readHeader(fd: number, path: string) {
  const fileSize = fstatSync(fd).size;
  const bad = (what: string) => new UserError(`${path} is not a valid safetensors file: ${what}`);
  if (fileSize < 8) throw bad(`it has ${fileSize} bytes, fewer than the 8-byte header length`);
  const headerLength = new DataView(readRange(fd, 0, 8).buffer).getBigUint64(0, true);
  if (headerLength > BigInt(fileSize - 8)) {
    throw bad(`the header length ${headerLength} runs past the end of the file (${fileSize} bytes)`);
  }
  if (headerLength > MAX_HEADER_BYTES) throw bad(`the header length ${headerLength} is over ${MAX_HEADER_BYTES} bytes`);
  const dataStart = 8 + Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(readRange(fd, 8, dataStart - 8)));
  } catch (err) {
    throw bad(`its header is not JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(header)) throw bad('its header is not a JSON object');

  let metadata: Record<string, string> | null = null;
  const entries = new Map<string, SafetensorsEntry>();
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(value, bad);
    } else {
      entries.set(name, parseEntry(name, value, dataStart, fileSize - dataStart, (what) => bad(`tensor "${name}": ${what}`)));
    }
  }
  checkNoOverlap(entries, bad);
  return { metadata, entries };
}

function parseMetadata(value: unknown, bad: (what: string) => UserError): Record<string, string> {
  if (!isPlainObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw bad('__metadata__ must map strings to strings');
  }
  return Object.freeze({ ...(value as Record<string, string>) });
}

function parseEntry(name: string, value: unknown, dataStart: number, dataSize: number, bad: (what: string) => UserError): SafetensorsEntry {
  if (!isPlainObject(value)) throw bad('its entry is not an object');
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (!isStorageDType(dtype)) throw bad(`unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(ITEM_SIZE).join(', ')})`);
  if (!Array.isArray(shape) || !shape.every(isCount)) throw bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw bad(`data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > dataSize) throw bad(`data_offsets [${begin}, ${end}] fall outside the ${dataSize} data bytes`);
  const expected = numel(shape) * ITEM_SIZE[dtype];
  if (end - begin !== expected) {
    throw bad(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${expected}`);
  }
  return { dtype, shape: shape as number[], begin: dataStart + begin, end: dataStart + end };
}

function checkNoOverlap(entries: Map<string, SafetensorsEntry>, bad: (what: string) => UserError): void {
  const sorted = [...entries].filter(([, e]) => e.end > e.begin).sort(([, a], [, b]) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    const [prevName, prev] = sorted[i - 1]!;
    const [name, e] = sorted[i]!;
    if (e.begin < prev.end) throw bad(`tensors "${prevName}" and "${name}" overlap`);
  }
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
