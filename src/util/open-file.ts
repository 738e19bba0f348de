// Opening a file for a reader: a missing or unreadable file is a UserError naming it, and the descriptor
// is closed again when parsing its header fails.

import { closeSync, openSync } from 'node:fs';
import { UserError } from '../errors.ts';

/** Opens `path` read-only and hands the descriptor to `parse`; closes it if `parse` throws. */
export function openAndParse<T>(path: string, parse: (fd: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new UserError(`cannot open ${path}: ${(err as Error).message}`);
  }
  try {
    return parse(fd);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}
