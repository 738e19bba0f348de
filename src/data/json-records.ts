// Streams the records of a JSON data file without holding the file in memory: a top-level JSON array
// (split into elements by a small scanner, each parsed by JSON.parse) or JSON Lines (one per line).
// Knows nothing about what a record holds; see dataset.ts.

import { createReadStream } from 'node:fs';
import { UserError } from '../errors.ts';
import { forEachLine, MAX_RECORD_BYTES, tooLong, Utf8Tally } from './lines.ts';

/** Where a record came from, for error messages. */
export interface RecordPosition {
  index: number; // 0-based record number
  line: number; // 1-based line where the record starts
}

export type RecordVisitor = (value: unknown, at: RecordPosition) => void;

export interface RecordReading {
  /** Counts bytes that are not UTF-8. */
  tally?: Utf8Tally;
  /** The longest record (a line, or an array element) in bytes; see MAX_RECORD_BYTES. */
  maxRecordBytes?: number;
}

/** Calls `visit` for every record of `path`, in file order. The layout is sniffed from the first character. */
export async function forEachJsonRecord(path: string, visit: RecordVisitor, reading: RecordReading = {}): Promise<void> {
  const tally = reading.tally ?? new Utf8Tally();
  const maxBytes = reading.maxRecordBytes ?? MAX_RECORD_BYTES;
  const first = await firstCharacter(path);
  if (first === '[') await scanJsonArray(path, visit, tally, maxBytes);
  else await readJsonLines(path, visit, tally, maxBytes);
}

async function firstCharacter(path: string): Promise<string | undefined> {
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 4096 });
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      const match = /[^\s\uFEFF]/.exec(chunk);
      if (match) return match[0];
    }
    return undefined;
  } finally {
    stream.destroy();
  }
}

async function readJsonLines(path: string, visit: RecordVisitor, tally: Utf8Tally, maxBytes: number): Promise<void> {
  let index = 0;
  await forEachLine(path, tally, (text, line) => {
    if (text.trim() === '' || (line === 1 && text.trim() === '\uFEFF')) return;
    let value: unknown;
    try {
      value = JSON.parse(line === 1 ? text.replace(/^\uFEFF/, '') : text);
    } catch (err) {
      throw new UserError(
        `${path}: line ${line} (record ${index}) is not JSON: ${(err as Error).message}. ` +
          'A data file is either a JSON array of records or JSON Lines (one record per line)',
      );
    }
    visit(value, { index: index++, line });
  }, maxBytes);
}

const enum Scan {
  BeforeArray,
  BeforeElement, // after '[' or ','
  InElement,
  AfterElement, // expecting ',' or ']'
  AfterArray,
}

/** Splits the array into elements on raw bytes (ASCII never occurs inside a UTF-8 multi-byte character). */
async function scanJsonArray(path: string, visit: RecordVisitor, tally: Utf8Tally, maxBytes: number): Promise<void> {
  let state = Scan.BeforeArray as Scan; // widened: finish() changes it too
  let line = 1;
  let index = 0;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let startLine = 1;
  let parts: Buffer[] = []; // pieces of the current element from earlier chunks
  let held = 0; // their bytes

  const fail = (what: string): never => {
    throw new UserError(`${path}: line ${line}: ${what} (the file starts with "[", so it is read as one JSON array of records)`);
  };
  const finish = (chunk: Buffer, start: number, end: number) => {
    const bytes = parts.length === 0 ? chunk.subarray(start, end) : Buffer.concat([...parts, chunk.subarray(start, end)]);
    if (bytes.length > maxBytes) throw tooLong(path, `record ${index} (line ${startLine})`, maxBytes);
    let value: unknown;
    try {
      value = JSON.parse(tally.decode(bytes, startLine));
    } catch (err) {
      throw new UserError(`${path}: record ${index} (line ${startLine}) is not valid JSON: ${(err as Error).message}`);
    }
    visit(value, { index: index++, line: startLine });
    parts = [];
    held = 0;
    state = Scan.AfterElement;
  };

  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    let elementStart = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (state === Scan.InElement) {
        if (inString) {
          if (escaped) escaped = false;
          else if (c === 0x5c) escaped = true;
          else if (c === 0x22) {
            inString = false;
            if (depth === 0) finish(chunk, elementStart, i + 1);
          }
        } else if (c === 0x22) inString = true;
        else if (c === 0x7b || c === 0x5b) depth++;
        else if (c === 0x7d || c === 0x5d) {
          if (depth === 0) {
            finish(chunk, elementStart, i); // a bare value ended by ']'
            i--;
            continue;
          }
          if (--depth === 0) finish(chunk, elementStart, i + 1);
        } else if (depth === 0 && (c === 0x2c || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09)) {
          finish(chunk, elementStart, i); // a bare value ended by ',' or white space
          i--;
          continue;
        }
        if (c === 0x0a) line++;
        continue;
      }
      if (c === 0x0a) line++;
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
      switch (state) {
        case Scan.BeforeArray:
          if (c === 0xef && chunk[i + 1] === 0xbb && chunk[i + 2] === 0xbf) {
            i += 2; // byte order mark
            break;
          }
          if (c !== 0x5b) fail('expected "["');
          state = Scan.BeforeElement;
          break;
        case Scan.BeforeElement:
          if (c === 0x5d && index === 0) {
            state = Scan.AfterArray;
            break;
          }
          if (c === 0x5d || c === 0x2c) fail(`expected a record, found "${String.fromCharCode(c)}"`);
          state = Scan.InElement;
          elementStart = i;
          startLine = line;
          depth = c === 0x7b || c === 0x5b ? 1 : 0;
          inString = c === 0x22;
          escaped = false;
          break;
        case Scan.AfterElement:
          if (c === 0x2c) state = Scan.BeforeElement;
          else if (c === 0x5d) state = Scan.AfterArray;
          else fail(`expected "," or "]" after record ${index - 1}, found ${describeByte(c)}`);
          break;
        case Scan.AfterArray:
          fail('unexpected text after the closing "]"');
      }
    }
    if (state === Scan.InElement) {
      held += chunk.length - elementStart;
      if (held > maxBytes) throw tooLong(path, `record ${index} (line ${startLine})`, maxBytes);
      parts.push(chunk.subarray(elementStart));
    }
  }
  if (state === Scan.InElement || state === Scan.BeforeElement || state === Scan.BeforeArray) {
    throw new UserError(`${path}: the JSON array ends early (record ${index} starting at line ${startLine} is cut off)`);
  }
  if (state === Scan.AfterElement) throw new UserError(`${path}: the JSON array has no closing "]"`);
}

function describeByte(c: number): string {
  return c >= 0x21 && c < 0x7f ? `"${String.fromCharCode(c)}"` : `byte 0x${c.toString(16).padStart(2, '0')}`;
}
