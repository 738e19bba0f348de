// config.json into LlamaConfig: every fixture config, transformers 4 and 5 layouts, mistral and qwen2,
// defaults, and errors naming the file and the key.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadLlamaConfig, parseLlamaConfig } from '../../../src/arch/llama-config.ts';
import type { LlamaConfig } from '../../../src/arch/llama-config.ts';
import { UserError } from '../../../src/errors.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';
import { tempDir } from './tmp.ts';

const NO_BIAS = { q: false, k: false, v: false, o: false, mlp: false };

const FIXTURES: [string[], Partial<LlamaConfig>][] = [
  [['models', 'llama-mha'], {
    modelType: 'llama', vocabSize: 512, hiddenSize: 64, intermediateSize: 160, numLayers: 2, numHeads: 4, numKvHeads: 4, headDim: 16,
    rmsNormEps: 1e-6, ropeTheta: 1e4, ropeScaling: null, maxPositionEmbeddings: 128, tieWordEmbeddings: false, biases: NO_BIAS,
    bosTokenId: 1, eosTokenId: 2, padTokenId: 0, torchDtype: 'float32',
  }],
  [['models', 'llama-gqa'], {
    vocabSize: 384, numLayers: 3, numHeads: 8, numKvHeads: 2, headDim: 8, intermediateSize: 96, rmsNormEps: 1e-5, ropeTheta: 5e5,
    tieWordEmbeddings: true, biases: { q: true, k: true, v: true, o: true, mlp: false }, maxPositionEmbeddings: 256,
  }],
  [['models', 'llama-mha-sharded'], { hiddenSize: 64, numLayers: 2, tieWordEmbeddings: false }],
  [['models', 'llama-mha-bf16'], { hiddenSize: 64, torchDtype: 'bfloat16' }],
  [['models', 'llama3-rope'], {
    vocabSize: 300, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 128, ropeTheta: 5e5, maxPositionEmbeddings: 256,
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 },
  }],
  [['pretrained', 'tiny-english'], {
    vocabSize: 32000, hiddenSize: 256, intermediateSize: 688, numLayers: 6, numHeads: 8, numKvHeads: 4, headDim: 32,
    tieWordEmbeddings: true, maxPositionEmbeddings: 1024, torchDtype: 'bfloat16', rmsNormEps: 1e-5,
  }],
  [['trainer', 'base'], { vocabSize: 32000, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, headDim: 8, tieWordEmbeddings: true }],
];

for (const [parts, expected] of FIXTURES) {
  test(`the fixture config ${parts.join('/')} loads as expected`, (t) => {
    if (!needShared(t, 'fixtures', ...parts, 'config.json')) return;
    const config = loadLlamaConfig(sharedPath('fixtures', ...parts));
    for (const [key, value] of Object.entries(expected)) assert.deepEqual(config[key as keyof LlamaConfig], value, key);
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.biases));
  });
}

/** A minimal LLaMA config.json, with `extra` keys laid over it. */
function config(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model_type: 'llama', vocab_size: 100, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, ...extra };
}

test('missing optional keys take transformers\' defaults; unknown keys are ignored', () => {
  const c = parseLlamaConfig(config({ some_future_key: { x: 1 } }), 'config.json');
  assert.equal(c.numKvHeads, 4);
  assert.equal(c.headDim, 8);
  assert.equal(c.rmsNormEps, 1e-6);
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.ropeScaling, null);
  assert.equal(c.maxPositionEmbeddings, 2048);
  assert.deepEqual(c.biases, NO_BIAS);
  assert.deepEqual([c.bosTokenId, c.eosTokenId, c.padTokenId, c.torchDtype], [1, 2, null, null]);
});

test('transformers 4 layout: top-level rope_theta and rope_scaling (type or rope_type), torch_dtype', () => {
  const linear = parseLlamaConfig(config({ rope_theta: 5e5, rope_scaling: { type: 'linear', factor: 4 }, torch_dtype: 'float16' }), 'c');
  assert.equal(linear.ropeTheta, 5e5);
  assert.deepEqual(linear.ropeScaling, { type: 'linear', factor: 4 });
  assert.equal(linear.torchDtype, 'float16');
  const dynamic = parseLlamaConfig(config({ max_position_embeddings: 4096, rope_scaling: { rope_type: 'dynamic', factor: 2 } }), 'c');
  assert.deepEqual(dynamic.ropeScaling, { type: 'dynamic', factor: 2, originalMaxPositions: 4096 });
  const llama31 = parseLlamaConfig(config({
    rope_theta: 5e5,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  }), 'c');
  assert.deepEqual(llama31.ropeScaling, { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
  assert.equal(parseLlamaConfig(config({ rope_scaling: null }), 'c').ropeScaling, null);
});

test('the decapoda-era config of the seed (pad -1, no max_position_embeddings) loads', () => {
  const c = parseLlamaConfig(config({ bos_token_id: 0, eos_token_id: 1, pad_token_id: -1, max_sequence_length: 2048, torch_dtype: 'float16' }), 'c');
  assert.deepEqual([c.bosTokenId, c.eosTokenId, c.padTokenId, c.maxPositionEmbeddings], [0, 1, null, 2048]);
});

test('mistral: no biases; a sliding window at least max positions (or null) is accepted', () => {
  const m = parseLlamaConfig(config({ model_type: 'mistral', num_key_value_heads: 2, max_position_embeddings: 32768, sliding_window: null, eos_token_id: [2, 3] }), 'c');
  assert.equal(m.modelType, 'mistral');
  assert.deepEqual(m.biases, NO_BIAS);
  assert.deepEqual(m.eosTokenId, [2, 3]);
  assert.equal(parseLlamaConfig(config({ model_type: 'mistral', max_position_embeddings: 4096, sliding_window: 4096 }), 'c').modelType, 'mistral');
  assert.throws(() => parseLlamaConfig(config({ model_type: 'mistral', max_position_embeddings: 32768, sliding_window: 4096 }), 'mistral.json'),
    /mistral.json: sliding_window 4096 is below max_position_embeddings \(32768\): sliding-window attention is not supported/);
  assert.throws(() => parseLlamaConfig(config({ model_type: 'mistral', max_position_embeddings: 32768 }), 'c'), /sliding_window 4096/, 'MistralConfig default window');
});

test('qwen2: biases on q, k, v but not o; use_sliding_window must be false', () => {
  const q = parseLlamaConfig(config({ model_type: 'qwen2', tie_word_embeddings: true, use_sliding_window: false, sliding_window: 4096, rope_theta: 1e6 }), 'c');
  assert.deepEqual(q.biases, { q: true, k: true, v: true, o: false, mlp: false });
  assert.deepEqual([q.bosTokenId, q.eosTokenId, q.maxPositionEmbeddings, q.ropeTheta], [null, null, 32768, 1e6]);
  assert.throws(() => parseLlamaConfig(config({ model_type: 'qwen2', use_sliding_window: true }), 'q.json'), /q.json: use_sliding_window is true: sliding-window attention is not supported/);
});

test('llama attention_bias and mlp_bias set the biases', () => {
  assert.deepEqual(parseLlamaConfig(config({ attention_bias: true, mlp_bias: true }), 'c').biases, { q: true, k: true, v: true, o: true, mlp: true });
});

test('missing keys, bad values and unsupported features are UserErrors naming the file and the key', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ hidden_size: undefined }, /"hidden_size" is missing/],
    [{ model_type: undefined }, /"model_type" is missing/],
    [{ num_hidden_layers: null }, /"num_hidden_layers" is missing/],
    [{ model_type: 'gpt2' }, /model_type "gpt2" is not supported \(supported: llama, mistral, qwen2\)/],
    [{ hidden_size: '32' }, /"hidden_size" must be a positive integer, got "32"/],
    [{ vocab_size: 1.5 }, /"vocab_size" must be a positive integer/],
    [{ num_key_value_heads: 3 }, /num_attention_heads \(4\) is not a multiple of num_key_value_heads \(3\)/],
    [{ hidden_size: 30 }, /hidden_size \(30\) is not a multiple of num_attention_heads \(4\)/],
    [{ head_dim: 7 }, /head_dim 7 is odd/],
    [{ hidden_act: 'gelu' }, /hidden_act "gelu" is not supported/],
    [{ rope_parameters: { rope_type: 'yarn', factor: 4, rope_theta: 1e4 } }, /rope_parameters: rope type "yarn" is not supported/],
    [{ rope_scaling: { type: 'linear' } }, /rope_scaling.factor must be a positive number for rope type linear/],
    [{ rope_parameters: { rope_type: 'llama3', factor: 8, rope_theta: 1e4 } }, /rope_parameters.low_freq_factor must be a positive number/],
    [{ rope_parameters: { full_attention: { rope_type: 'default' } } }, /per-layer-type rope parameters are not supported/],
    [{ partial_rotary_factor: 0.5 }, /partial_rotary_factor 0.5 is not supported/],
    [{ tie_word_embeddings: 'yes' }, /"tie_word_embeddings" must be true or false/],
    [{ eos_token_id: [2, 'x'] }, /"eos_token_id" must be an integer or a list of them/],
  ];
  for (const [extra, message] of cases) {
    assert.throws(() => parseLlamaConfig(config(extra), '/m/config.json'), (e: Error) => e instanceof UserError && e.message.startsWith('/m/config.json: ') && message.test(e.message), String(message));
  }
  assert.throws(() => parseLlamaConfig([1], '/m/config.json'), /\/m\/config.json is not a JSON object/);
});

test('loadLlamaConfig says which folder to pass', (t) => {
  const dir = tempDir(t);
  assert.throws(() => loadLlamaConfig(dir, { flag: '--base_model' }),
    new UserError(`--base_model ${dir} has no config.json: pass the folder that holds config.json and the *.safetensors files`));
  assert.throws(() => loadLlamaConfig(join(dir, 'decapoda-research/llama-7b-hf'), { flag: '--base_model' }), /--base_model .* does not exist: pass a local folder, or a Hub id \(org\/name\) to fetch into the Hugging Face cache/);
  writeFileSync(join(dir, 'model.safetensors'), '');
  assert.throws(() => loadLlamaConfig(join(dir, 'model.safetensors')), /is a file: pass the folder that holds it/);
  mkdirSync(join(dir, 'broken'));
  writeFileSync(join(dir, 'broken', 'config.json'), '{"model_type": ');
  assert.throws(() => loadLlamaConfig(join(dir, 'broken')), /broken\/config.json is not valid JSON/);
});
