// LoRA bookkeeping: PEFT's init distribution, scaling (plain and rsLoRA), merge then unmerge, and
// dropout masks that are reproducible from their seed.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLlamaConfig } from '../../../src/arch/llama-config.ts';
import { JsBackend } from '../../../src/backends/js/index.ts';
import { dropoutKeep } from '../../../src/engine/random.ts';
import { scoreBatch } from '../../../src/model/compute.ts';
import { loadModel } from '../../../src/model/load.ts';
import { createLoraAdapter, initLoraAdapter, loraScaling } from '../../../src/model/lora.ts';
import { adapterFromTensors, loadLoraAdapter, settingsFromConfig } from '../../../src/model/lora-io.ts';
import { readPeftAdapter } from '../../../src/formats/peft-adapter.ts';
import { mergeLora, unmergeLora } from '../../../src/model/merge.ts';
import { assertClose, fixtureDir, readGolden } from '../../helpers/golden.ts';
import { needShared } from '../../helpers/shared.ts';

const config = parseLlamaConfig(
  { model_type: 'llama', vocab_size: 50, hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, rms_norm_eps: 1e-6, max_position_embeddings: 64 },
  'test config',
);

test('scaling is alpha / r, or alpha / sqrt(r) with rsLoRA', () => {
  assert.equal(loraScaling({ r: 8, alpha: 16, useRslora: false }), 2);
  assert.equal(loraScaling({ r: 8, alpha: 16, useRslora: true }), 16 / Math.sqrt(8));
});

test("PEFT's default init: A uniform in +-1/sqrt(in), B zero; gaussian: A ~ N(0, 1/r)", async () => {
  const be = new JsBackend();
  const adapter = createLoraAdapter(be, config, { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'down_proj'], useRslora: false });
  initLoraAdapter(be, adapter, 'kaiming', 7);
  const down = adapter.layers[1]!.get('down_proj')!;
  const A = (await be.download(down.A)) as Float32Array;
  const bound = 1 / Math.sqrt(40);
  assert.ok(A.every((v) => Math.abs(v) <= bound));
  assert.ok(Math.max(...A.map(Math.abs)) > 0.9 * bound, 'spans the range');
  assert.ok(((await be.download(down.B)) as Float32Array).every((v) => v === 0));

  const wide = createLoraAdapter(be, { ...config, intermediateSize: 4000 }, { r: 4, alpha: 8, dropout: 0, targets: ['down_proj'], useRslora: false });
  initLoraAdapter(be, wide, 'gaussian', 7);
  const g = (await be.download(wide.layers[0]!.get('down_proj')!.A)) as Float32Array;
  const mean = g.reduce((a, b) => a + b, 0) / g.length;
  const std = Math.sqrt(g.reduce((a, b) => a + (b - mean) ** 2, 0) / g.length);
  assert.ok(Math.abs(std - 0.25) < 0.01, `std ${std} should be 1/r = 0.25`);
  assert.ok(Math.abs(mean) < 0.01);
});

test('the same seed gives the same init; another seed another', async () => {
  const be = new JsBackend();
  const make = async (seed: number) => {
    const a = createLoraAdapter(be, config, { r: 2, alpha: 4, dropout: 0, targets: ['v_proj'], useRslora: false });
    initLoraAdapter(be, a, 'kaiming', seed);
    return Array.from((await be.download(a.layers[0]!.get('v_proj')!.A)) as Float32Array);
  };
  assert.deepEqual(await make(3), await make(3));
  assert.notDeepEqual(await make(3), await make(4));
});

test('dropout keeps about 1 - p of the elements, identically for the same seed', () => {
  let kept = 0;
  for (let i = 0; i < 100_000; i++) if (dropoutKeep(42, i, 0.1)) kept++;
  assert.ok(Math.abs(kept / 100_000 - 0.9) < 0.005, `kept ${kept}`);
  const be = new JsBackend();
  const x = be.alloc([1000], 'f32', 'scratch');
  be.upload(x, new Float32Array(1000).fill(1));
  const a = be.alloc([1000], 'f32', 'scratch'), b = be.alloc([1000], 'f32', 'scratch');
  be.dropout(a, x, 0.25, 9);
  be.dropout(b, x, 0.25, 9);
  assert.deepEqual(a.handle, b.handle);
  assert.ok((a.handle as Float32Array).every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6));
});

test('merging an adapter gives the LoRA logits; unmerging restores the base weights', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const be = new JsBackend();
  const m = await loadModel(be, fixtureDir('llama-mha'));
  const g = readGolden('llama-mha');
  const adapter = loadLoraAdapter(be, m.config, `${fixtureDir('llama-mha')}/adapter`);
  const before = (await be.download(m.weights.layers[1]!.proj.gate_proj.weight)) as Float32Array;
  const withLora = await scoreBatch(m, g.batch, { adapter, dropout: 0, seed: 0 });
  await mergeLora(m, adapter);
  const merged = await scoreBatch(m, g.batch, null);
  assert.ok(Math.abs(merged.lossSum - withLora.lossSum) < 1e-5 * withLora.lossSum);
  await unmergeLora(m, adapter);
  const after = (await be.download(m.weights.layers[1]!.proj.gate_proj.weight)) as Float32Array;
  assertClose(after, before, 0, 1e-6, 'gate_proj after merge and unmerge');
});

test('an adapter on all layers applies fully after one on fewer layers ran on the same model', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const g = readGolden('llama-mha');
  const dir = `${fixtureDir('llama-mha')}/adapter`;
  const fresh = await loadModel(new JsBackend(), fixtureDir('llama-mha'));
  const full = { adapter: loadLoraAdapter(fresh.be, fresh.config, dir), dropout: 0, seed: 0 };
  const expected = await scoreBatch(fresh, g.batch, full);

  const be = new JsBackend();
  const m = await loadModel(be, fixtureDir('llama-mha'));
  const peft = readPeftAdapter(dir);
  const firstLayerOnly = adapterFromTensors(be, m.config, { ...settingsFromConfig(peft.config, m.config.numLayers), layersToTransform: [0] }, peft.tensors, dir);
  await scoreBatch(m, g.batch, { adapter: firstLayerOnly, dropout: 0, seed: 0 });
  const after = await scoreBatch(m, g.batch, { adapter: loadLoraAdapter(be, m.config, dir), dropout: 0, seed: 0 });
  assert.equal(after.lossSum, expected.lossSum);
});
