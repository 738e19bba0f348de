// Checkpoint folders `output_dir/checkpoint-N`: the method's weights (a PEFT adapter for LoRA), AdamW moments
// (optimizer.safetensors) and trainer_state.json (step, scheduler, RNG, data position, log history). A checkpoint
// is built in a hidden temporary folder and renamed into place whole, so a crash at any moment leaves the last one loadable.

import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../errors.ts';
import type { HostTensor } from '../../formats/host-tensor.ts';
import { readSafetensors } from '../../formats/safetensors.ts';
import { writeSafetensors } from '../../formats/safetensors-write.ts';
import { writeFileAtomic } from '../../util/atomic-write.ts';

export const STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
const PARTIAL = /^\.checkpoint-\d+\.partial-/;

export function checkpointName(step: number): string {
  return `checkpoint-${step}`;
}

export interface CheckpointContents {
  /** Writes and checks the trained weights in the folder being built; if it throws, nothing is published. */
  writeWeights: (dir: string) => Promise<void>;
  optimizer: ReadonlyMap<string, HostTensor>;
  state: object;
}

/** Writes checkpoint-<step> under outputDir. */
export async function writeCheckpoint(outputDir: string, step: number, contents: CheckpointContents): Promise<string> {
  const final = join(outputDir, checkpointName(step));
  const tmp = join(outputDir, `.${checkpointName(step)}.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, { recursive: true });
  try {
    await contents.writeWeights(tmp);
    await writeSafetensors(join(tmp, OPTIMIZER_FILE), contents.optimizer);
    await writeFileAtomic(join(tmp, STATE_FILE), JSON.stringify(contents.state, null, 1) + '\n');
    if (existsSync(final)) {
      const old = `${tmp}-replaced`;
      await rename(final, old);
      await rename(tmp, final);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, final);
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  await syncFolder(outputDir);
  return final;
}

async function syncFolder(folder: string): Promise<void> {
  const dir = await open(folder, 'r').catch(() => undefined);
  await dir?.sync().catch(() => {});
  await dir?.close();
}

export function isCheckpoint(dir: string): boolean {
  return existsSync(join(dir, STATE_FILE)) && existsSync(join(dir, OPTIMIZER_FILE));
}

/** The complete checkpoints in outputDir, oldest first. */
export function listCheckpoints(outputDir: string): { step: number; name: string; dir: string }[] {
  if (!existsSync(outputDir)) return [];
  return readdirSync(outputDir)
    .map((name) => ({ name, m: /^checkpoint-(\d+)$/.exec(name) }))
    .filter(({ name, m }) => m && isCheckpoint(join(outputDir, name)))
    .map(({ name, m }) => ({ step: Number(m![1]), name, dir: join(outputDir, name) }))
    .sort((a, b) => a.step - b.step);
}

/** Temporary folders a killed save left behind. */
export async function removePartialCheckpoints(outputDir: string): Promise<void> {
  if (!existsSync(outputDir)) return;
  for (const name of readdirSync(outputDir)) if (PARTIAL.test(name)) await rm(join(outputDir, name), { recursive: true, force: true });
}

/** The run a checkpoint belongs to (trainer_state.json's run.id); null for one written before runs had ids. */
export function checkpointRunId(dir: string): string | null {
  try {
    const id = JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8'))?.run?.id;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}

/**
 * Deletes the oldest checkpoints of run `runId` beyond `limit` (0 keeps all), never the newest nor the one
 * named `keep`; another run's checkpoints are not touched.
 */
export async function rotateCheckpoints(outputDir: string, limit: number, keep: string | null, runId: string | null): Promise<string[]> {
  if (limit <= 0) return [];
  const all = listCheckpoints(outputDir).filter((c) => checkpointRunId(c.dir) === runId);
  const removable = all.slice(0, -1).filter((c) => c.name !== keep);
  const excess = all.length - limit;
  const removed = removable.slice(0, Math.max(0, excess)).map((c) => c.name);
  for (const name of removed) await rm(join(outputDir, name), { recursive: true, force: true });
  return removed;
}

/** trainer_state.json and the optimizer moments of a checkpoint folder. */
export function readCheckpoint(dir: string): { state: Record<string, unknown>; optimizer: Map<string, HostTensor> } {
  if (!statSync(dir).isDirectory() || !isCheckpoint(dir)) {
    throw new UserError(`${dir} is not a complete checkpoint (it needs ${STATE_FILE} and ${OPTIMIZER_FILE})`);
  }
  let state: unknown;
  try {
    state = JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8'));
  } catch (err) {
    throw new UserError(`${join(dir, STATE_FILE)} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof state !== 'object' || state === null) throw new UserError(`${join(dir, STATE_FILE)} does not hold a JSON object`);
  return { state: state as Record<string, unknown>, optimizer: readSafetensors(join(dir, OPTIMIZER_FILE)) };
}
