// finetune's --output_dir before the run: refused when it is a file or a broken link or cannot be created, a link
// followed into its target, a killed run's temporary files removed, another run's checkpoints refused unless
// --overwrite_output_dir deletes them (the same run's stay).

import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import { makeAdapterConfig, writePeftAdapter } from '../../../src/formats/peft-adapter.ts';
import { listCheckpoints, writeCheckpoint } from '../../../src/train/checkpoint/checkpoint.ts';
import { prepareOutputDir } from '../../../src/train/checkpoint/output-dir.ts';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'outdir-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const tensor = (n: number) => ({ dtype: 'F32' as const, shape: [n], data: new Float32Array(n).fill(1) });
const checkpoint = (dir: string, step: number, id: string) => writeCheckpoint(dir, step, {
  writeWeights: (tmp) => writePeftAdapter(tmp, makeAdapterConfig({ r: 1, loraAlpha: 2, loraDropout: 0, targetModules: ['q_proj'] }),
    new Map([['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', tensor(4)]])),
  optimizer: new Map([['x.exp_avg', tensor(4)]]),
  state: { global_step: step, run: { id } },
});

const refused = (pattern: RegExp) => (e: Error) => e instanceof UserError && pattern.test(e.message);
const quiet = () => {};

test('a file, a path through a file and a broken link are one-line errors, before anything is written', async (t) => {
  const root = tempDir(t);
  writeFileSync(join(root, 'file'), 'x');
  await assert.rejects(prepareOutputDir(join(root, 'file'), 'r', false, quiet), refused(/--output_dir .*file is a file: pass a folder/));
  await assert.rejects(prepareOutputDir(join(root, 'file', 'sub'), 'r', false, quiet), refused(/--output_dir .*file\/sub cannot be created \(ENOTDIR/));
  symlinkSync(join(root, 'nowhere'), join(root, 'broken'));
  await assert.rejects(prepareOutputDir(join(root, 'broken'), 'r', false, quiet), refused(/is a link to .*nowhere, which does not exist/));
});

test('a link to a folder is followed: the link stays and the run writes into its target', async (t) => {
  const root = tempDir(t);
  mkdirSync(join(root, 'target'));
  symlinkSync(join(root, 'target'), join(root, 'link'));
  await checkpoint(join(root, 'target'), 5, 'old');
  await assert.rejects(prepareOutputDir(join(root, 'link'), 'new', false, quiet), refused(/holds checkpoints of another run \(checkpoint-5\)/));
  await prepareOutputDir(join(root, 'link'), 'new', true, quiet);
  assert.ok(lstatSync(join(root, 'link')).isSymbolicLink());
  assert.deepEqual(readdirSync(join(root, 'target')), []);
});

test('another run\'s checkpoints are refused, deleted with overwrite; the same run\'s are kept', async (t) => {
  const dir = tempDir(t);
  await checkpoint(dir, 10, 'old');
  await checkpoint(dir, 20, 'old');
  await prepareOutputDir(dir, 'old', false, quiet); // resuming that run
  assert.equal(listCheckpoints(dir).length, 2);
  await assert.rejects(prepareOutputDir(dir, 'new', false, quiet),
    refused(/holds checkpoints of another run \(checkpoint-10, checkpoint-20\): continue that run with --resume_from_checkpoint .*--overwrite_output_dir/));
  assert.equal(listCheckpoints(dir).length, 2, 'nothing deleted');
  const lines: string[] = [];
  await prepareOutputDir(dir, 'new', true, (l) => lines.push(l));
  assert.deepEqual(listCheckpoints(dir), []);
  assert.match(lines.join('\n'), /deleted the checkpoints of an earlier run .*checkpoint-10, checkpoint-20/);
});

test('temporary files of a killed run are removed at start; a live process\'s are kept', async (t) => {
  const dir = tempDir(t);
  const dead = join(dir, 'metrics.jsonl.tmp-999999999-0a1b2c3d4e5f');
  const report = join(dir, 'report.html.tmp-999999998-abcdef012345');
  const live = join(dir, `report.html.tmp-${process.ppid}-abcdef012345`);
  for (const p of [dead, report, live, join(dir, 'notes.tmp')]) writeFileSync(p, 'x');
  await prepareOutputDir(dir, 'r', false, quiet);
  assert.deepEqual([existsSync(dead), existsSync(report), existsSync(live), existsSync(join(dir, 'notes.tmp'))], [false, false, true, true]);
});
