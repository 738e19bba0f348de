// An export's output folder, written whole or not at all: the files go into a sibling staging folder that
// is renamed into place only when every one of them is complete; on any error it is removed. An existing
// folder that is not empty is refused unless overwrite is asked for. A link is followed: its target is replaced
// and the link stays; a link to nothing is refused. Not the writing of single files.

import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UserError } from '../errors.ts';

/** Throws when `dir` is a file, or a non-empty folder and `overwrite` is false; `flag` names it in messages. */
export function checkOutputFolder(dir: string, overwrite: boolean, flag: string): void {
  if (!existsSync(dir)) {
    if (lstatSync(dir, { throwIfNoEntry: false })?.isSymbolicLink()) {
      throw new UserError(`${flag} ${dir} is a link to ${readlinkSync(dir)}, which does not exist: create that folder or pass another ${flag}`);
    }
    return;
  }
  if (!statSync(dir).isDirectory()) throw new UserError(`${flag} ${dir} is a file: pass a folder to write the export into`);
  if (!overwrite && readdirSync(dir).length > 0) {
    throw new UserError(`${flag} ${dir} exists and is not empty: pass an empty or new folder, or --overwrite to replace it`);
  }
}

/** Refuses an output folder that is, or lies inside, an input folder. */
export function checkNotInside(output: string, input: string, outFlag: string, inFlag: string): void {
  const out = resolve(output), inp = resolve(input);
  if (out === inp || out.startsWith(inp + '/')) throw new UserError(`${outFlag} ${output} is inside ${inFlag} ${input}: write the export elsewhere`);
}

/** Runs `write(staging)`, then puts the staging folder in place of `dir` (replacing it if it exists). */
export async function writeFolder<T>(dir: string, overwrite: boolean, flag: string, write: (staging: string) => Promise<T>): Promise<T> {
  checkOutputFolder(dir, overwrite, flag);
  const target = existsSync(dir) ? realpathSync(dir) : resolve(dir);
  await mkdir(dirname(target), { recursive: true });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const staging = `${target}.partial-${tag}`;
  let result: T;
  try {
    await mkdir(staging);
    result = await write(staging);
    checkOutputFolder(dir, overwrite, flag); // it may have been filled meanwhile
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  const old = existsSync(target) ? `${target}.old-${tag}` : null;
  if (old) await rename(target, old);
  await rename(staging, target);
  if (old) await rm(old, { recursive: true, force: true });
  return result;
}
