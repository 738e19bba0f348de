// Reading an exact byte range of an open file into memory, in pieces small enough for fs.readSync.
// Not a cache and not a stream: one range, one buffer.

import { readSync } from 'node:fs';

const MAX_READ = 1 << 30; // fs.readSync reads at most 2 GiB - 1 per call

/** Bytes [position, position + length) of `fd` into `into` (default: a fresh, 8-byte aligned buffer). */
export function readRange(fd: number, position: number, length: number, into = new Uint8Array(length)): Uint8Array {
  for (let done = 0; done < length; ) {
    const n = readSync(fd, into, done, Math.min(MAX_READ, length - done), position + done);
    if (n === 0) throw new Error(`unexpected end of file at byte ${position + done}`);
    done += n;
  }
  return into;
}
