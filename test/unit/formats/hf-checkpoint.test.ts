// HF model folders in all four layouts (safetensors, sharded, .bin, sharded .bin) and their errors.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import { openCheckpoint } from '../../../src/formats/hf-checkpoint.ts';
import type { HostTensor } from '../../../src/formats/host-tensor.ts';
import { writeShardedSafetensors } from '../../../src/formats/safetensors-write.ts';
import { writeTorchStateDict } from '../../../src/formats/torch-write.ts';
import { tempDir } from './tmp.ts';

const WEIGHTS = new Map<string, HostTensor>(
  ['a', 'b', 'c', 'd', 'e'].map((name, i) => [name, { dtype: 'F32', shape: [4], data: Float32Array.of(i, i + 1, i + 2, i + 3) }]),
);

async function assertReadsWeights(dir: string, source: string): Promise<void> {
  const reader = await openCheckpoint(dir);
  try {
    assert.equal(reader.source, source);
    assert.deepEqual(new Set(reader.names()), new Set(WEIGHTS.keys()));
    for (const [name, w] of WEIGHTS) {
      assert.deepEqual(reader.info(name), { dtype: 'F32', shape: [4] });
      assert.deepEqual([...reader.read(name).data], [...w.data], name);
    }
    assert.throws(() => reader.read('zz'), /has no tensor named "zz"/);
  } finally {
    reader.close();
  }
}

test('single and sharded safetensors, single and sharded .bin all open and read the same', async (t) => {
  const root = tempDir(t);
  const single = join(root, 'single');
  const sharded = join(root, 'sharded');
  const bin = join(root, 'bin');
  const binSharded = join(root, 'bin-sharded');
  for (const d of [single, sharded, bin, binSharded]) mkdirSync(d);
  await writeShardedSafetensors(single, WEIGHTS, 1e9);
  await writeShardedSafetensors(sharded, WEIGHTS, 40);
  await writeTorchStateDict(join(bin, 'pytorch_model.bin'), WEIGHTS);
  const entries = [...WEIGHTS];
  await writeTorchStateDict(join(binSharded, 'pytorch_model-00001-of-00002.bin'), entries.slice(0, 2));
  await writeTorchStateDict(join(binSharded, 'pytorch_model-00002-of-00002.bin'), entries.slice(2));
  writeFileSync(join(binSharded, 'pytorch_model.bin.index.json'), JSON.stringify({
    metadata: { total_size: 80 },
    weight_map: Object.fromEntries(entries.map(([n], i) => [n, `pytorch_model-0000${i < 2 ? 1 : 2}-of-00002.bin`])),
  }));
  await assertReadsWeights(single, 'model.safetensors');
  await assertReadsWeights(sharded, 'model.safetensors.index.json');
  await assertReadsWeights(bin, 'pytorch_model.bin');
  await assertReadsWeights(binSharded, 'pytorch_model.bin.index.json');
});

test('safetensors is preferred over .bin when a folder has both', async (t) => {
  const dir = tempDir(t);
  await writeShardedSafetensors(dir, WEIGHTS, 1e9);
  await writeTorchStateDict(join(dir, 'pytorch_model.bin'), [['other', WEIGHTS.get('a')!]]);
  await assertReadsWeights(dir, 'model.safetensors');
});

test('errors name the folder and say what to pass', async (t) => {
  const dir = tempDir(t);
  await assert.rejects(openCheckpoint(dir, { flag: '--base_model' }), new UserError(
    `--base_model ${dir} has no weights (model.safetensors.index.json, model.safetensors, pytorch_model.bin.index.json, pytorch_model.bin): ` +
      'pass the folder that holds config.json and the *.safetensors files',
  ));
  await assert.rejects(openCheckpoint(join(dir, 'huggyllama/llama-7b')), /does not exist: pass a local folder/);
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors' } }));
  await assert.rejects(openCheckpoint(dir), /model.safetensors.index.json names model-00001-of-00002.safetensors, which is missing/);
  await writeShardedSafetensors(join(dir), [['b', WEIGHTS.get('b')!]], 1e9, 'model-00001-of-00002');
  await assert.rejects(openCheckpoint(dir), /puts "a" in model-00001-of-00002.safetensors, which does not hold it/);
  writeFileSync(join(dir, 'model.safetensors.index.json'), '{"weight_map": 3}');
  await assert.rejects(openCheckpoint(dir), /has no weight_map of tensor names to shard file names/);
  for (const shard of ['.', '..', '', 'sub/x.safetensors']) {
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: shard } }));
    await assert.rejects(openCheckpoint(dir), new UserError(`${join(dir, 'model.safetensors.index.json')}: weight_map maps a to ${JSON.stringify(shard)}, which is not the name of a shard file beside it`));
  }
});
