// Export outputs are whole or absent: a non-empty folder is refused unless overwrite is asked for, a failed
// export leaves neither the folder nor its staging copy, and a writer that fails mid-file leaves no file.

import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeFolder } from '../../../src/export/output-folder.ts';
import { writeSafetensors } from '../../../src/formats/safetensors-write.ts';
import { writeFileAtomic } from '../../../src/util/atomic-write.ts';
import { tempDir } from '../formats/tmp.ts';

test('writeFolder puts a complete folder in place, refuses a non-empty one, and replaces it with overwrite', async (t) => {
  const root = tempDir(t);
  const out = join(root, 'out');
  const result = await writeFolder(out, false, '--output_dir', async (dir) => {
    await writeFileAtomic(join(dir, 'a.txt'), 'one');
    assert.ok(!existsSync(out), 'nothing appears under the final name before the end');
    return 42;
  });
  assert.equal(result, 42);
  assert.deepEqual(readdirSync(root), ['out']);
  await assert.rejects(writeFolder(out, false, '--output_dir', async () => {}), /--output_dir .*out exists and is not empty: .* --overwrite/);
  await writeFolder(out, true, '--output_dir', async (dir) => writeFileAtomic(join(dir, 'b.txt'), 'two'));
  assert.deepEqual(readdirSync(out), ['b.txt']);
  assert.deepEqual(readdirSync(root), ['out']);
  mkdirSync(join(root, 'empty'));
  await writeFolder(join(root, 'empty'), false, '--output_dir', async (dir) => writeFileAtomic(join(dir, 'c.txt'), 'three'));
  assert.equal(readFileSync(join(root, 'empty', 'c.txt'), 'utf8'), 'three');
});

test('an output folder that is a link is followed: its target gets the export (old files gone with overwrite), the link stays', async (t) => {
  const root = tempDir(t);
  mkdirSync(join(root, 'target'));
  writeFileSync(join(root, 'target', 'old.txt'), 'old');
  symlinkSync(join(root, 'target'), join(root, 'link'));
  await assert.rejects(writeFolder(join(root, 'link'), false, '--output_dir', async () => {}), /link exists and is not empty/);
  await writeFolder(join(root, 'link'), true, '--output_dir', async (dir) => writeFileAtomic(join(dir, 'new.txt'), 'new'));
  assert.ok(lstatSync(join(root, 'link')).isSymbolicLink());
  assert.deepEqual(readdirSync(join(root, 'target')), ['new.txt']);
  assert.deepEqual(readdirSync(root).sort(), ['link', 'target']);
  symlinkSync(join(root, 'nowhere'), join(root, 'broken'));
  await assert.rejects(writeFolder(join(root, 'broken'), false, '--output_dir', async () => {}), /broken is a link to .*nowhere, which does not exist/);
});

test('an export that fails part-way leaves no folder, no staging folder, and an existing folder untouched', async (t) => {
  const root = tempDir(t);
  await assert.rejects(writeFolder(join(root, 'new'), false, '--output_dir', async (dir) => {
    await writeFileAtomic(join(dir, 'shard1'), 'done');
    throw new Error('disk full');
  }), /disk full/);
  assert.deepEqual(readdirSync(root), []);
  mkdirSync(join(root, 'old'));
  writeFileSync(join(root, 'old', 'keep.txt'), 'keep');
  await assert.rejects(writeFolder(join(root, 'old'), true, '--output_dir', async () => {
    throw new Error('disk full');
  }), /disk full/);
  assert.deepEqual(readdirSync(root), ['old']);
  assert.equal(readFileSync(join(root, 'old', 'keep.txt'), 'utf8'), 'keep');
});

test('a writer that throws after some tensors were written leaves no file under the final name', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'model.safetensors');
  let loaded = 0;
  const tensor = (fail: boolean) => ({
    dtype: 'F32' as const,
    shape: [1024],
    load: () => {
      if (fail) throw new Error('ENOSPC: no space left on device, write');
      loaded++;
      return new Float32Array(1024);
    },
  });
  await assert.rejects(writeSafetensors(path, [['a', tensor(false)], ['b', tensor(false)], ['c', tensor(true)]]), /ENOSPC/);
  assert.equal(loaded, 2, 'two tensors were written before the failure');
  assert.deepEqual(readdirSync(dir), []);
});
