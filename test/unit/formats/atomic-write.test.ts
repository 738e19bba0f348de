// Atomic writes: complete or absent, never half-written; chunks streamed as produced; no temporaries left.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeChunksAtomic, writeFileAtomic } from '../../../src/util/atomic-write.ts';
import { tempDir } from './tmp.ts';

test('writeFileAtomic writes text and bytes, replacing an existing file, leaving no temporary', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'out.json');
  await writeFileAtomic(path, '{"a": 1}');
  assert.equal(readFileSync(path, 'utf8'), '{"a": 1}');
  await writeFileAtomic(path, Uint8Array.of(1, 2, 3));
  assert.deepEqual([...readFileSync(path)], [1, 2, 3]);
  assert.deepEqual(readdirSync(dir), ['out.json']);
});

test('writeChunksAtomic streams chunks from a generator, each produced only when needed', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'big.bin');
  const produced: number[] = [];
  async function* chunks() {
    for (let i = 0; i < 4; i++) {
      produced.push(i);
      yield new Uint8Array(1000).fill(i);
    }
  }
  await writeChunksAtomic(path, chunks());
  const bytes = readFileSync(path);
  assert.equal(bytes.length, 4000);
  assert.deepEqual([bytes[0], bytes[1999], bytes[3999]], [0, 1, 3]);
  assert.deepEqual(produced, [0, 1, 2, 3]);
});

test('a failure midway leaves the previous file untouched and no temporary behind', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'model.safetensors');
  writeFileSync(path, 'old');
  async function* failing() {
    yield Uint8Array.of(1, 2);
    throw new Error('disk on fire');
  }
  await assert.rejects(writeChunksAtomic(path, failing()), /disk on fire/);
  assert.equal(readFileSync(path, 'utf8'), 'old');
  assert.deepEqual(readdirSync(dir), ['model.safetensors']);
  await assert.rejects(writeChunksAtomic(join(dir, 'new.bin'), failing()));
  assert.equal(existsSync(join(dir, 'new.bin')), false);
  assert.deepEqual(readdirSync(dir), ['model.safetensors']);
});
