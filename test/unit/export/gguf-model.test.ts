// The model side of a GGUF export: tensor names, order, types and q/k permutation for an untied model with a
// LoRA merged in; the architecture metadata; Llama 3 rope scaling as rope_freqs factors that reproduce our
// scaled rotary frequencies; the F16 fallback for rows that are not whole quantization blocks.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadLlamaConfig } from '../../../src/arch/llama-config.ts';
import { ggufModelMetadata, ggufTensors, llama3RopeFactors, tensorType } from '../../../src/export/gguf-model.ts';
import { openMerged } from '../../../src/export/merged-checkpoint.ts';
import { bytesOf } from '../../../src/formats/host-tensor.ts';
import { permuteRotaryRows } from '../../../src/formats/meta-checkpoint.ts';
import { ropeInvFreq } from '../../../src/model/rope.ts';
import { fixtureDir } from '../../helpers/golden.ts';
import { needShared } from '../../helpers/shared.ts';

test('merged llama-mha as GGUF tensors: names in order, F32 norms, permuted q/k, an untied output', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const merged = await openMerged(fixtureDir('llama-mha'), { loraWeights: join(fixtureDir('llama-mha'), 'adapter') });
  t.after(() => merged.close());
  const tensors = ggufTensors(merged, 'f32');
  const names = [...tensors.keys()];
  assert.deepEqual(names.slice(0, 3), ['token_embd.weight', 'blk.0.attn_q.weight', 'blk.0.attn_k.weight']);
  assert.deepEqual(names.slice(-2), ['output_norm.weight', 'output.weight']);
  assert.equal(names.length, 3 + 2 * 9);
  assert.deepEqual(tensors.get('blk.0.attn_q.weight')!.shape, [64, 64]);
  const q = merged.readFloat32('model.layers.0.self_attn.q_proj.weight');
  assert.deepEqual(await tensors.get('blk.0.attn_q.weight')!.load(), bytesOf(permuteRotaryRows(q, 4, 16, 64, 'interleaved')));
  const v = merged.readFloat32('model.layers.0.self_attn.v_proj.weight');
  assert.deepEqual(await tensors.get('blk.0.attn_v.weight')!.load(), bytesOf(v), 'v is not permuted');
  const q8 = ggufTensors(merged, 'q8_0');
  assert.deepEqual([q8.get('blk.0.attn_norm.weight')!.type, q8.get('blk.0.ffn_down.weight')!.type, q8.get('token_embd.weight')!.type], ['F32', 'Q8_0', 'Q8_0']);
  const meta = ggufModelMetadata(merged.config, fixtureDir('llama-mha'), 'q8_0');
  assert.deepEqual(['general.architecture', 'general.file_type', 'llama.block_count', 'llama.attention.head_count_kv', 'llama.rope.freq_base'].map((k) => meta.get(k)!.value), ['llama', 7, 2, 4, 10000]);
});

test('rows that are not whole blocks of 32 fall back to F16; 1-D tensors stay F32', () => {
  assert.equal(tensorType([256, 688], 'q8_0'), 'F16');
  assert.equal(tensorType([688, 256], 'q4_0'), 'Q4_0');
  assert.equal(tensorType([256], 'f16'), 'F32');
  assert.equal(tensorType([256, 256], 'bf16'), 'BF16');
});

test('Llama 3 rope scaling becomes rope_freqs.weight, whose factors divide the base frequencies into our scaled ones', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama3-rope')) return;
  const config = loadLlamaConfig(fixtureDir('llama3-rope'));
  const factors = llama3RopeFactors(config)!;
  assert.equal(factors.length, config.headDim / 2);
  const unscaled = ropeInvFreq({ ...config, ropeScaling: null });
  const scaled = ropeInvFreq(config);
  factors.forEach((f, i) => assert.ok(Math.abs(unscaled[i]! / f - scaled[i]!) <= 1e-6 * scaled[i]!, `frequency ${i}`));
  assert.equal(factors[0], 1);
  assert.equal(factors.at(-1), 8);
  const merged = await openMerged(fixtureDir('llama3-rope'));
  t.after(() => merged.close());
  const first = [...ggufTensors(merged, 'f16')][0]!;
  assert.equal(first[0], 'rope_freqs.weight');
  assert.equal(first[1].type, 'F32');
  assert.equal(llama3RopeFactors(loadLlamaConfig(fixtureDir('llama-mha'))), null);
});
