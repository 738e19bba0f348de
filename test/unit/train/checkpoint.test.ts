// Checkpoint folders: published whole or not at all, rotation that keeps the newest and the best,
// and leftovers of a killed save cleaned up.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeAdapterConfig, writePeftAdapter } from '../../../src/formats/peft-adapter.ts';
import {
  checkpointRunId, listCheckpoints, readCheckpoint, removePartialCheckpoints, rotateCheckpoints, writeCheckpoint,
} from '../../../src/train/checkpoint/checkpoint.ts';

const tensor = (n: number) => ({ dtype: 'F32' as const, shape: [n], data: new Float32Array(n).fill(1) });
const adapter = (dir: string) => writePeftAdapter(dir, makeAdapterConfig({ r: 1, loraAlpha: 2, loraDropout: 0, targetModules: ['q_proj'] }),
  new Map([['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', tensor(4)]]));
const contents = (step: number, writeWeights: (dir: string) => Promise<void> = adapter) => ({
  writeWeights,
  optimizer: new Map([['x.exp_avg', tensor(4)], ['x.exp_avg_sq', tensor(4)]]),
  state: { global_step: step },
});

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a checkpoint appears only after its weights are written and verified', async (t) => {
  const dir = tempDir(t);
  await writeCheckpoint(dir, 5, contents(5));
  const { state, optimizer } = readCheckpoint(join(dir, 'checkpoint-5'));
  assert.equal(state.global_step, 5);
  assert.equal(optimizer.size, 2);
  await assert.rejects(writeCheckpoint(dir, 6, contents(6, async () => { throw new Error('bad adapter'); })), /bad adapter/);
  assert.deepEqual(readdirSync(dir), ['checkpoint-5']);
  await writeCheckpoint(dir, 5, contents(7)); // re-saving a step replaces it whole
  assert.equal(readCheckpoint(join(dir, 'checkpoint-5')).state.global_step, 7);
  assert.deepEqual(readdirSync(dir), ['checkpoint-5']);
});

test('rotation keeps save_total_limit checkpoints, never the newest or the best', async (t) => {
  const dir = tempDir(t);
  for (const step of [10, 20, 30, 40]) await writeCheckpoint(dir, step, contents(step));
  assert.deepEqual(await rotateCheckpoints(dir, 2, 'checkpoint-10', null), ['checkpoint-20', 'checkpoint-30']);
  assert.deepEqual(listCheckpoints(dir).map((c) => c.name), ['checkpoint-10', 'checkpoint-40']);
  assert.deepEqual(await rotateCheckpoints(dir, 1, 'checkpoint-10', null), []);
  assert.deepEqual(await rotateCheckpoints(dir, 1, null, null), ['checkpoint-10']);
  assert.deepEqual(await rotateCheckpoints(dir, 0, null, null), []);
});

test('rotation only touches the current run\'s checkpoints', async (t) => {
  const dir = tempDir(t);
  const ofRun = (step: number, id: string) => ({ ...contents(step), state: { global_step: step, run: { id } } });
  for (const step of [100, 200, 300]) await writeCheckpoint(dir, step, ofRun(step, 'old'));
  for (const step of [1, 2, 3]) await writeCheckpoint(dir, step, ofRun(step, 'new'));
  assert.equal(checkpointRunId(join(dir, 'checkpoint-2')), 'new');
  assert.deepEqual(await rotateCheckpoints(dir, 2, null, 'new'), ['checkpoint-1']);
  assert.deepEqual(listCheckpoints(dir).map((c) => c.name), ['checkpoint-2', 'checkpoint-3', 'checkpoint-100', 'checkpoint-200', 'checkpoint-300']);
});

test('incomplete folders are not checkpoints, and a killed save\'s leftovers are removed', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'checkpoint-3'));
  writeFileSync(join(dir, 'checkpoint-3', 'trainer_state.json'), '{}');
  mkdirSync(join(dir, '.checkpoint-4.partial-123-abcd'));
  assert.deepEqual(listCheckpoints(dir), []);
  await removePartialCheckpoints(dir);
  assert.ok(!existsSync(join(dir, '.checkpoint-4.partial-123-abcd')));
  assert.ok(existsSync(join(dir, 'checkpoint-3')));
});
