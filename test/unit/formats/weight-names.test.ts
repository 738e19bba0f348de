// Weight-name tables (HF, Meta, GGUF, PEFT), the weights a config implies, and the checkpoint check.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadLlamaConfig, parseLlamaConfig } from '../../../src/arch/llama-config.ts';
import { UserError } from '../../../src/errors.ts';
import type { TensorInfo } from '../../../src/formats/safetensors.ts';
import { SafetensorsFile } from '../../../src/formats/safetensors.ts';
import {
  checkCheckpointWeights, expectedWeights, parsePeftKey, peftKey, peftParamName, renameWeight,
} from '../../../src/formats/weight-names.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';

const GQA_BIASED = parseLlamaConfig({
  model_type: 'llama', vocab_size: 50, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 2, attention_bias: true, mlp_bias: true, tie_word_embeddings: true,
}, 'test');

test('expectedWeights lists every tensor with its shape, biases and lm_head as the config says', () => {
  const w = expectedWeights(GQA_BIASED);
  const shapes = Object.fromEntries(w.map((e) => [e.name, e.shape]));
  assert.equal(w.length, 1 + 2 * (7 * 2 + 2) + 1, 'embed, 2 × (7 weights + 7 biases + 2 norms), norm; no lm_head when tied');
  assert.deepEqual(shapes['model.embed_tokens.weight'], [50, 16]);
  assert.deepEqual(shapes['model.layers.1.self_attn.q_proj.weight'], [16, 16]);
  assert.deepEqual(shapes['model.layers.1.self_attn.k_proj.weight'], [8, 16]);
  assert.deepEqual(shapes['model.layers.1.self_attn.v_proj.bias'], [8]);
  assert.deepEqual(shapes['model.layers.0.self_attn.o_proj.weight'], [16, 16]);
  assert.deepEqual(shapes['model.layers.0.mlp.down_proj.weight'], [16, 24]);
  assert.deepEqual(shapes['model.layers.0.mlp.gate_proj.bias'], [24]);
  assert.equal(shapes['lm_head.weight'], undefined);
});

test('the fixtures hold exactly the weights their configs imply', (t) => {
  for (const model of ['llama-mha', 'llama-gqa', 'llama3-rope']) {
    if (!needShared(t, 'fixtures', 'models', model)) return;
    const dir = sharedPath('fixtures', 'models', model);
    const file = SafetensorsFile.open(`${dir}/model.safetensors`);
    const config = loadLlamaConfig(dir);
    checkCheckpointWeights(file, config, dir);
    assert.deepEqual(new Set(expectedWeights(config).map((e) => e.name)), new Set(file.names()), model);
    file.close();
  }
});

test('every HF name maps to Meta and GGUF and back; names are data, not guesses', () => {
  const unbiased = parseLlamaConfig({ model_type: 'llama', vocab_size: 50, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 3, num_attention_heads: 4 }, 't');
  const names = [...expectedWeights(unbiased).map((e) => e.name), 'lm_head.weight'];
  for (const name of names) {
    for (const to of ['meta', 'gguf'] as const) assert.equal(renameWeight(renameWeight(name, 'hf', to), to, 'hf'), name, `${name} via ${to}`);
  }
  assert.equal(renameWeight('model.embed_tokens.weight', 'hf', 'meta'), 'tok_embeddings.weight');
  assert.equal(renameWeight('model.layers.2.self_attn.q_proj.weight', 'hf', 'meta'), 'layers.2.attention.wq.weight');
  assert.equal(renameWeight('model.layers.0.mlp.gate_proj.weight', 'hf', 'meta'), 'layers.0.feed_forward.w1.weight');
  assert.equal(renameWeight('model.layers.0.mlp.down_proj.weight', 'hf', 'meta'), 'layers.0.feed_forward.w2.weight');
  assert.equal(renameWeight('model.layers.0.mlp.up_proj.weight', 'hf', 'meta'), 'layers.0.feed_forward.w3.weight');
  assert.equal(renameWeight('model.layers.1.post_attention_layernorm.weight', 'hf', 'meta'), 'layers.1.ffn_norm.weight');
  assert.equal(renameWeight('lm_head.weight', 'hf', 'meta'), 'output.weight');
  assert.equal(renameWeight('model.norm.weight', 'hf', 'gguf'), 'output_norm.weight');
  assert.equal(renameWeight('model.layers.7.self_attn.o_proj.weight', 'hf', 'gguf'), 'blk.7.attn_output.weight');
  assert.equal(renameWeight('model.layers.7.input_layernorm.weight', 'hf', 'gguf'), 'blk.7.attn_norm.weight');
  assert.equal(renameWeight('blk.3.attn_q.bias', 'gguf', 'hf'), 'model.layers.3.self_attn.q_proj.bias');
  assert.throws(() => renameWeight('model.layers.0.self_attn.rotary_emb.inv_freq', 'hf', 'gguf'), new UserError('unknown hf weight name "model.layers.0.self_attn.rotary_emb.inv_freq"'));
  assert.throws(() => renameWeight('rope.freqs', 'meta', 'hf'), /unknown meta weight name "rope.freqs"/);
  assert.throws(() => renameWeight('model.layers.0.self_attn.q_proj.bias', 'hf', 'meta'), /has no meta equivalent/);
});

test('PEFT keys: file keys without ".default", in-memory names with it, both parse', () => {
  assert.equal(peftKey(0, 'q_proj', 'A'), 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
  assert.equal(peftKey(11, 'down_proj', 'B'), 'base_model.model.model.layers.11.mlp.down_proj.lora_B.weight');
  assert.equal(peftParamName(0, 'q_proj', 'A'), 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight');
  assert.deepEqual(parsePeftKey(peftKey(3, 'up_proj', 'B')), { layer: 3, projection: 'up_proj', matrix: 'B' });
  assert.deepEqual(parsePeftKey(peftParamName(2, 'v_proj', 'A')), { layer: 2, projection: 'v_proj', matrix: 'A' });
  for (const bad of ['base_model.model.model.layers.0.mlp.q_proj.lora_A.weight', 'base_model.model.lm_head.lora_A.weight', 'model.layers.0.self_attn.q_proj.weight']) {
    assert.equal(parsePeftKey(bad), null, bad);
  }
});

test('checkCheckpointWeights names the first missing, misshapen, non-float or unexpected tensor', () => {
  const expected = expectedWeights(GQA_BIASED);
  const reader = (edit: (m: Map<string, TensorInfo>) => void) => {
    const m = new Map(expected.map((e): [string, TensorInfo] => [e.name, { dtype: 'BF16', shape: e.shape }]));
    edit(m);
    return { names: () => [...m.keys()], info: (n: string) => m.get(n)! };
  };
  checkCheckpointWeights(reader(() => {}), GQA_BIASED, './m');
  checkCheckpointWeights(reader((m) => {
    m.set('model.layers.0.self_attn.rotary_emb.inv_freq', { dtype: 'F32', shape: [2] });
    m.set('lm_head.weight', { dtype: 'BF16', shape: [50, 16] }); // beside tied embeddings: ignored
  }), GQA_BIASED, './m');
  const cases: [(m: Map<string, TensorInfo>) => void, string][] = [
    [(m) => m.delete('model.layers.1.mlp.up_proj.bias'), './m has no tensor model.layers.1.mlp.up_proj.bias (shape [24]): do the weights belong to the model its config.json describes?'],
    [(m) => m.set('model.layers.0.self_attn.k_proj.weight', { dtype: 'BF16', shape: [16, 16] }), './m: model.layers.0.self_attn.k_proj.weight has shape [16, 16], but config.json implies [8, 16]'],
    [(m) => m.set('model.norm.weight', { dtype: 'I8', shape: [16] }), './m: model.norm.weight is I8; weights must be F32, F16 or BF16'],
    [(m) => m.set('model.layers.2.input_layernorm.weight', { dtype: 'F32', shape: [16] }), './m holds model.layers.2.input_layernorm.weight, which the LLaMA architecture of its config.json has no place for'],
  ];
  for (const [edit, message] of cases) assert.throws(() => checkCheckpointWeights(reader(edit), GQA_BIASED, './m'), new UserError(message));
});
