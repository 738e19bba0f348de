// Merge and export against PyTorch + PEFT (../shared/fixtures/models): the merged state dict transformers saves
// after 3 AdamW steps (merged_after3.safetensors) reproduced from the base + the reference's after-3 adapter,
// and the exported folder scoring the reference's merged logits; .bin shards scoring base + adapter; a bf16
// base kept bf16, its merged weights the reference's within one bf16 rounding; Meta's consolidated.00.pth (and
// a 2-way model-parallel split) read back and un-permuted equal to the HF export.
// Tolerances: merged weights 1e-6 relative + 1e-7 (float32 rounding of W + s·BA); logits 1e-5 + 1e-5 relative;
// bf16 merged weights against the reference's merge delta on the bf16 base: 2^-8 relative (bf16's unit
// roundoff) + 1e-6 (float32 rounding of the delta).

import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadLlamaConfig } from '../../src/arch/llama-config.ts';
import { JsBackend } from '../../src/backends/js/index.ts';
import { exportHf } from '../../src/export/export-hf.ts';
import { exportStateDict, readMetaAsHf } from '../../src/export/export-state-dict.ts';
import { openCheckpoint } from '../../src/formats/hf-checkpoint.ts';
import { bytesOf, toFloat32 } from '../../src/formats/host-tensor.ts';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { writeSafetensors } from '../../src/formats/safetensors-write.ts';
import { TorchFile } from '../../src/formats/torch-pickle.ts';
import { scoreBatch } from '../../src/model/compute.ts';
import { loadModel } from '../../src/model/load.ts';
import { assertClose, fixtureDir, goldenFloat, readGolden, type Golden } from '../helpers/golden.ts';
import { needShared } from '../helpers/shared.ts';

const work = mkdtempSync(join(tmpdir(), 'export-golden-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** The reference's after-3 adapter as a PEFT folder: its config, the golden after3.* tensors without `.default`. */
async function after3Adapter(model: string, g: Golden): Promise<string> {
  const dir = join(work, `${model}-after3-adapter`);
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(fixtureDir(model), 'adapter', 'adapter_config.json'), join(dir, 'adapter_config.json'));
  const tensors = [...g.tensors].filter(([k]) => k.startsWith('after3.')).map(([k, v]) => [k.slice(7).replace('.default.weight', '.weight'), v] as const);
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors);
  return dir;
}

async function logitsOf(dir: string, g: Golden): Promise<Float32Array> {
  const m = await loadModel(new JsBackend(), dir);
  const V = m.config.vocabSize;
  const logits = new Float32Array(g.batch.B * g.batch.T * V);
  await scoreBatch(m, g.batch, null, (row0, _rows, chunk) => logits.set(chunk, row0 * V));
  return logits;
}

function assertLogits(actual: Float32Array, expected: Float32Array, g: Golden, what: string): void {
  const V = actual.length / (g.batch.B * g.batch.T);
  assertClose(actual, expected, 1e-5, 1e-5, what, (i) => g.batch.attentionMask![Math.floor(i / V)] === 0);
}

for (const model of ['llama-mha', 'llama-gqa']) {
  describe(`${model}: export-hf of the after-3 adapter`, () => {
    test('reproduces merged_after3.safetensors, and the export scores the reference merged logits', async (t) => {
      if (!needShared(t, 'fixtures', 'models', model, 'merged_after3.safetensors')) return;
      const g = readGolden(model);
      const out = join(work, `${model}-hf`);
      const result = await exportHf({ baseModel: fixtureDir(model), loraWeights: await after3Adapter(model, g), outputDir: out, backend: new JsBackend() });
      assert.equal(result.adapted, loadLlamaConfig(fixtureDir(model)).numLayers * 7);
      assert.ok(result.logits!.maxDiff <= 1e-5 * result.logits!.scale, `probe logits differ by ${result.logits!.maxDiff}`);
      const reference = readSafetensors(join(fixtureDir(model), 'merged_after3.safetensors'));
      const ours = readSafetensors(join(out, 'model.safetensors'));
      // The reference saved its in-memory state dict; save_pretrained leaves out a tied lm_head, and so do we.
      const tied = loadLlamaConfig(fixtureDir(model)).tieWordEmbeddings;
      assert.deepEqual([...ours.keys()].sort(), [...reference.keys()].filter((k) => !(tied && k === 'lm_head.weight')).sort());
      for (const [name, expected] of reference) {
        const actual = ours.get(tied && name === 'lm_head.weight' ? 'model.embed_tokens.weight' : name)!;
        assert.equal(actual.dtype, expected.dtype, name);
        assertClose(toFloat32(actual), toFloat32(expected), 1e-6, 1e-7, name);
      }
      assertLogits(await logitsOf(out, g), goldenFloat(g, 'merged.logits'), g, 'merged logits of the export');
    });
  });
}

test('export-hf as sharded .bin loads back and scores base + adapter (the reference LoRA logits)', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const g = readGolden('llama-mha');
  const out = join(work, 'mha-bin');
  const result = await exportHf({
    baseModel: fixtureDir('llama-mha'), loraWeights: join(fixtureDir('llama-mha'), 'adapter'), outputDir: out,
    saveFormat: 'bin', maxShardBytes: 200_000, backend: new JsBackend(),
  });
  assert.deepEqual(result.files.slice(0, 2), ['pytorch_model-00001-of-00004.bin', 'pytorch_model-00002-of-00004.bin']);
  assert.ok(result.files.includes('pytorch_model.bin.index.json') && result.files.includes('generation_config.json'));
  const index = JSON.parse(readFileSync(join(out, 'pytorch_model.bin.index.json'), 'utf8'));
  assert.equal(index.weight_map['model.embed_tokens.weight'], 'pytorch_model-00001-of-00004.bin');
  assertLogits(await logitsOf(out, g), goldenFloat(g, 'lora.logits'), g, 'LoRA logits of the .bin export');
});

test('a bf16 base exports bf16 weights (the reference merge within bf16 rounding) unless --dtype says otherwise; config.json follows --dtype', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha-bf16') || !needShared(t, 'fixtures', 'models', 'llama-mha', 'merged_after3.safetensors')) return;
  const adapter = await after3Adapter('llama-mha', readGolden('llama-mha'));
  const kept = join(work, 'bf16-kept');
  const r = await exportHf({ baseModel: fixtureDir('llama-mha-bf16'), loraWeights: adapter, outputDir: kept, backend: new JsBackend() });
  assert.ok(r.logits!.tolerance >= 1e-2, 'the probe allows for bf16 rounding of the merged weights');
  const ck = await openCheckpoint(kept);
  t.after(() => ck.close());
  assert.ok(ck.names().every((n) => ck.info(n).dtype === 'BF16'));
  const reference = readSafetensors(join(fixtureDir('llama-mha'), 'merged_after3.safetensors'));
  const f32Base = readSafetensors(join(fixtureDir('llama-mha'), 'model.safetensors'));
  const bf16Base = readSafetensors(join(fixtureDir('llama-mha-bf16'), 'model.safetensors'));
  const ours = readSafetensors(join(kept, 'model.safetensors'));
  assert.deepEqual([...ours.keys()].sort(), [...reference.keys()].sort());
  for (const [name, merged] of reference) {
    // The reference's delta (merged - f32 base) on the bf16 base, so that only the export's own rounding remains.
    const [m, w, b] = [merged, f32Base.get(name)!, bf16Base.get(name)!].map(toFloat32);
    assertClose(toFloat32(ours.get(name)!), m.map((x, i) => b[i]! + (x - w[i]!)), 2 ** -8, 1e-6, `bf16 ${name}`);
  }
  const cast = join(work, 'bf16-to-f32');
  await exportHf({ baseModel: fixtureDir('llama-mha-bf16'), loraWeights: adapter, outputDir: cast, dtype: 'F32', verify: false });
  assert.equal(JSON.parse(readFileSync(join(cast, 'config.json'), 'utf8')).dtype, 'float32');
  assert.equal(readSafetensors(join(cast, 'model.safetensors')).get('model.norm.weight')!.dtype, 'F32');
});

test('export-state-dict: Meta names and params.json; read back and un-permuted, every weight equals the HF export', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha', 'merged_after3.safetensors')) return;
  const g = readGolden('llama-mha');
  const adapter = await after3Adapter('llama-mha', g);
  const hf = join(work, 'mha-for-meta');
  await exportHf({ baseModel: fixtureDir('llama-mha'), loraWeights: adapter, outputDir: hf, verify: false });
  const meta = join(work, 'mha-meta');
  const r = await exportStateDict({ baseModel: fixtureDir('llama-mha'), loraWeights: adapter, outputDir: meta });
  assert.deepEqual(r.files, ['consolidated.00.pth', 'params.json']);
  const params = JSON.parse(readFileSync(join(meta, 'params.json'), 'utf8'));
  assert.deepEqual({ ...params, ffn_dim_multiplier: undefined }, {
    dim: 64, n_layers: 2, n_heads: 4, vocab_size: 512, multiple_of: 32, ffn_dim_multiplier: undefined, norm_eps: 1e-6, rope_theta: 10000,
  });
  const file = TorchFile.open(join(meta, 'consolidated.00.pth'));
  t.after(() => file.close());
  assert.deepEqual(file.names().slice(0, 4), ['tok_embeddings.weight', 'layers.0.attention.wq.weight', 'layers.0.attention.wk.weight', 'layers.0.attention.wv.weight']);
  assert.ok(file.names().includes('layers.1.feed_forward.w2.weight') && file.names().includes('output.weight') && file.names().includes('norm.weight'));
  const config = loadLlamaConfig(fixtureDir('llama-mha'));
  const merged = readSafetensors(join(hf, 'model.safetensors'));
  for (const [name, expected] of merged) {
    assert.deepEqual(bytesOf(readMetaAsHf([file], config, name).data), bytesOf(expected.data), name);
  }
  const wq = toFloat32(file.read('layers.0.attention.wq.weight'));
  assert.notDeepEqual(wq, toFloat32(merged.get('model.layers.0.self_attn.q_proj.weight')!), 'q rows are stored permuted');

  const split = join(work, 'mha-meta-2');
  const r2 = await exportStateDict({ baseModel: fixtureDir('llama-mha'), loraWeights: adapter, outputDir: split, numShards: 2 });
  assert.deepEqual(r2.files, ['consolidated.00.pth', 'consolidated.01.pth', 'params.json']);
  const parts = r2.files.slice(0, 2).map((f) => TorchFile.open(join(split, f)));
  t.after(() => parts.forEach((p) => p.close()));
  assert.deepEqual(parts[1]!.info('tok_embeddings.weight').shape, [512, 32]);
  assert.deepEqual(parts[1]!.info('layers.0.attention.wq.weight').shape, [32, 64]);
  assert.deepEqual(parts[1]!.info('layers.0.attention.wo.weight').shape, [64, 32]);
  assert.deepEqual(parts[1]!.info('norm.weight').shape, [64]);
  for (const [name, expected] of merged) {
    assert.deepEqual(bytesOf(readMetaAsHf(parts, config, name).data), bytesOf(expected.data), `${name} joined from 2 parts`);
  }
  await assert.rejects(exportStateDict({ baseModel: fixtureDir('llama-mha'), loraWeights: adapter, outputDir: join(work, 'mha-meta-3'), numShards: 3 }), /--num_shards 3 does not divide num_key_value_heads \(4\)/);
});

test('export-state-dict refuses a model whose biases Meta\'s layout cannot hold', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-gqa')) return;
  await assert.rejects(
    exportStateDict({ baseModel: fixtureDir('llama-gqa'), loraWeights: join(fixtureDir('llama-gqa'), 'adapter'), outputDir: join(work, 'gqa-meta') }),
    /config\.json: linear-layer biases has no place in Meta's params\.json/,
  );
});
