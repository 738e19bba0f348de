// finetune's --output_dir, made ready before the model loads: a file or a broken link in its place, or a folder
// that cannot be written, is refused; a link is followed (the run writes into its target); what a killed run left
// (temporary files, partial checkpoints) is removed; another run's checkpoints are refused unless
// --overwrite_output_dir deletes them. Not the writing of the outputs.

import { randomBytes } from 'node:crypto';
import { constants, existsSync, lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { access, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../errors.ts';
import { checkpointRunId, listCheckpoints, removePartialCheckpoints } from './checkpoint.ts';

export function newRunId(): string {
  return randomBytes(8).toString('hex');
}

/** Creates `dir` (or checks it) and clears it for run `runId`; `overwrite` is --overwrite_output_dir. */
export async function prepareOutputDir(dir: string, runId: string | null, overwrite: boolean, log: (line: string) => void): Promise<void> {
  const flag = `--output_dir ${dir}`;
  if (isLink(dir) && !existsSync(dir)) {
    throw new UserError(`${flag} is a link to ${readlinkSync(dir)}, which does not exist: create that folder or pass another --output_dir`);
  }
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UserError(`${flag} is a file: pass a folder (it is created when missing)`);
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UserError(`${flag} cannot be ${existsSync(dir) ? 'written' : 'created'} (${e.code}: ${e.message}): pass a folder you can write to`);
  }
  await removePartialCheckpoints(dir);
  await removeLeftoverTemporaries(dir);
  const other = listCheckpoints(dir).filter((c) => checkpointRunId(c.dir) !== runId);
  if (other.length === 0) return;
  const names = other.map((c) => c.name).join(', ');
  if (!overwrite) {
    throw new UserError(
      `${flag} holds checkpoints of another run (${names}): continue that run with --resume_from_checkpoint ${dir}, ` +
        'pass --overwrite_output_dir to delete them and start afresh, or choose another --output_dir',
    );
  }
  for (const c of other) await rm(c.dir, { recursive: true, force: true });
  log(`--overwrite_output_dir: deleted the checkpoints of an earlier run in ${dir} (${names})`);
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false; // absent, or a file on the way (mkdir says so below)
  }
}

/** The `<file>.tmp-<pid>-<hex>` files atomic writes leave when their process is killed (a live process's are kept). */
async function removeLeftoverTemporaries(dir: string): Promise<void> {
  for (const name of readdirSync(dir)) {
    const m = /\.tmp-(\d+)-[0-9a-f]+$/.exec(name);
    if (m && !isAlive(Number(m[1]))) await rm(join(dir, name), { force: true });
  }
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
