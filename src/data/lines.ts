// Reads a data file's lines as UTF-8 with a bound on a line's length, and counts malformed UTF-8 bytes
// instead of replacing them silently. Not record parsing (see json-records.ts).

import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { UserError } from '../errors.ts';

/** The longest line (or JSON array element) a data file may hold; a longer one is an error, not a crash. */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/** Decodes UTF-8, counting the bytes that are not valid UTF-8 (each becomes U+FFFD, as Python's errors="replace"). */
export class Utf8Tally {
  badBytes = 0;
  firstLine = 0;

  decode(bytes: Buffer, line: number): string {
    if (!isUtf8(bytes)) {
      this.badBytes += countInvalidUtf8(bytes);
      this.firstLine ||= line;
    }
    return bytes.toString('utf8');
  }

  /** The warning for `path`, or null when every byte was valid. */
  warning(path: string): string | null {
    if (this.badBytes === 0) return null;
    return `${path} holds ${this.badBytes} byte${this.badBytes === 1 ? '' : 's'} that are not UTF-8 (the first on line ${this.firstLine}); ` +
      'each was read as U+FFFD "�": re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8) to keep those characters';
  }
}

/** Bytes not part of a well-formed UTF-8 sequence (overlong forms, surrogates and values past U+10FFFF included). */
export function countInvalidUtf8(b: Uint8Array): number {
  let bad = 0;
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    const n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    let ok = n > 0 && i + n <= b.length;
    for (let k = 1; ok && k < n; k++) ok = (b[i + k]! & 0xc0) === 0x80;
    if (ok && n === 3) ok = (c !== 0xe0 || b[i + 1]! >= 0xa0) && (c !== 0xed || b[i + 1]! < 0xa0);
    if (ok && n === 4) ok = (c !== 0xf0 || b[i + 1]! >= 0x90) && (c !== 0xf4 || b[i + 1]! < 0x90);
    if (ok) i += n;
    else {
      bad++;
      i++;
    }
  }
  return bad;
}

export function tooLong(path: string, what: string, maxBytes: number): UserError {
  return new UserError(
    `${path}: ${what} is longer than ${maxBytes} bytes, the most one record may hold; cutoff_len keeps only its first few thousand ` +
      'tokens anyway: shorten or split that record (or remove it)',
  );
}

/** Calls `visit` with every line of `path` (1-based numbers; "\n" or "\r\n" endings), never holding more than one line. */
export async function forEachLine(path: string, tally: Utf8Tally, visit: (text: string, line: number) => void, maxBytes = MAX_RECORD_BYTES): Promise<void> {
  let parts: Buffer[] = [];
  let held = 0;
  let line = 0;
  const emit = (last: Buffer) => {
    let bytes = parts.length === 0 ? last : Buffer.concat([...parts, last]);
    if (bytes.at(-1) === 0x0d) bytes = bytes.subarray(0, -1);
    parts = [];
    held = 0;
    visit(tally.decode(bytes, ++line), line);
  };
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      if (held + nl - start > maxBytes) throw tooLong(path, `line ${line + 1}`, maxBytes);
      emit(chunk.subarray(start, nl));
      start = nl + 1;
    }
    held += chunk.length - start;
    if (held > maxBytes) throw tooLong(path, `line ${line + 1}`, maxBytes);
    if (start < chunk.length) parts.push(chunk.subarray(start));
  }
  if (parts.length > 0) emit(Buffer.alloc(0));
}
