// The fixture model stored four ways (safetensors, 10 safetensors shards, bfloat16, torch.save .bin) loads
// to the same weights; every fixture model folder passes the weight check against its own config.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadLlamaConfig } from '../../src/arch/llama-config.ts';
import { f32ToBf16 } from '../../src/engine/dtype.ts';
import { openCheckpoint } from '../../src/formats/hf-checkpoint.ts';
import type { CheckpointReader } from '../../src/formats/hf-checkpoint.ts';
import type { HostTensor } from '../../src/formats/host-tensor.ts';
import { checkCheckpointWeights, expectedWeights } from '../../src/formats/weight-names.ts';
import { needShared, sharedPath } from '../helpers/shared.ts';

async function allWeights(dir: string): Promise<{ source: string; weights: Map<string, HostTensor> }> {
  const reader: CheckpointReader = await openCheckpoint(dir);
  try {
    checkCheckpointWeights(reader, loadLlamaConfig(dir), dir);
    return { source: reader.source, weights: new Map(reader.names().map((n) => [n, reader.read(n)])) };
  } finally {
    reader.close();
  }
}

test('llama-mha as safetensors, sharded safetensors and pytorch_model.bin: identical weights', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha-sharded')) return;
  const mha = sharedPath('fixtures', 'models', 'llama-mha');
  const reference = await allWeights(mha);
  assert.equal(reference.source, 'model.safetensors');
  assert.equal(reference.weights.size, expectedWeights(loadLlamaConfig(mha)).length);
  const sharded = await allWeights(sharedPath('fixtures', 'models', 'llama-mha-sharded'));
  assert.equal(sharded.source, 'model.safetensors.index.json');
  const binOnly = mkdtempSync(join(tmpdir(), 'alpaca-bin-')); // the .bin alone, so it is what gets opened
  t.after(() => rmSync(binOnly, { recursive: true, force: true }));
  for (const file of ['config.json', 'pytorch_model.bin']) symlinkSync(join(mha, file), join(binOnly, file));
  const bin = await allWeights(binOnly);
  assert.equal(bin.source, 'pytorch_model.bin');
  for (const [what, other] of [['sharded', sharded], ['pytorch_model.bin', bin]] as const) {
    assert.deepEqual([...other.weights.keys()].sort(), [...reference.weights.keys()].sort(), what);
    for (const [name, w] of reference.weights) assert.deepEqual(other.weights.get(name), w, `${what} ${name}`);
  }
});

test('llama-mha-bf16 holds the float32 weights rounded to bfloat16 (nearest even)', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha-bf16')) return;
  const f32 = await allWeights(sharedPath('fixtures', 'models', 'llama-mha'));
  const bf16 = await allWeights(sharedPath('fixtures', 'models', 'llama-mha-bf16'));
  assert.deepEqual([...bf16.weights.keys()].sort(), [...f32.weights.keys()].sort());
  for (const [name, w] of f32.weights) {
    const b = bf16.weights.get(name)!;
    assert.equal(b.dtype, 'BF16', name);
    assert.deepEqual(b.shape, w.shape, name);
    assert.deepEqual(b.data, Uint16Array.from(w.data as Float32Array, f32ToBf16), name);
  }
});

test('every fixture model folder holds exactly the weights its config implies', async (t) => {
  const folders = [['models', 'llama-gqa'], ['models', 'llama3-rope'], ['pretrained', 'tiny-english'], ['trainer', 'base']];
  for (const parts of folders) {
    if (!needShared(t, 'fixtures', ...parts)) return;
    const dir = sharedPath('fixtures', ...parts);
    const reader = await openCheckpoint(dir);
    checkCheckpointWeights(reader, loadLlamaConfig(dir), dir);
    reader.close();
  }
});
