// PEFT adapter folders: the fixture adapters, byte-identical rewrites, PEFT's target matching, the fit
// check against a base model, and what cannot be read.

import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadLlamaConfig, parseLlamaConfig } from '../../../src/arch/llama-config.ts';
import { UserError } from '../../../src/errors.ts';
import type { HostTensor } from '../../../src/formats/host-tensor.ts';
import {
  adapterTargets, checkAdapterFitsBase, makeAdapterConfig, parseAdapterConfig, readPeftAdapter, savedVocabSize, writePeftAdapter,
} from '../../../src/formats/peft-adapter.ts';
import type { PeftAdapter } from '../../../src/formats/peft-adapter.ts';
import { writeTorchStateDict } from '../../../src/formats/torch-write.ts';
import { peftKey, peftMagnitudeKey, peftModuleKey } from '../../../src/formats/weight-names.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';
import { tempDir } from './tmp.ts';

const model = (name: string, ...rest: string[]) => sharedPath('fixtures', 'models', name, ...rest);

/** A copy of a fixture adapter folder holding only the given files. */
function copyAdapter(t: Parameters<typeof tempDir>[0], name: string, files: string[]): string {
  const dir = tempDir(t);
  for (const f of files) copyFileSync(model(name, 'adapter', f), join(dir, f));
  return dir;
}

test('the fixture adapters read with their settings, and fit their base models', (t) => {
  for (const [name, r, alpha, rslora, targets] of [
    ['llama-mha', 4, 8, false, 7], ['llama-gqa', 4, 8, false, 7], ['llama3-rope', 8, 16, true, 4],
  ] as const) {
    if (!needShared(t, 'fixtures', 'models', name, 'adapter')) return;
    const adapter = readPeftAdapter(model(name, 'adapter'));
    const c = adapter.config;
    assert.deepEqual([c.r, c.loraAlpha, c.loraDropout, c.useRslora, c.bias, c.peftType, c.taskType, c.baseModelNameOrPath], [r, alpha, 0, rslora, 'none', 'LORA', 'CAUSAL_LM', null], name);
    assert.equal((c.targetModules as string[]).length, targets, name);
    const base = loadLlamaConfig(model(name));
    assert.equal(adapter.tensors.size, 2 * targets * base.numLayers, name);
    checkAdapterFitsBase(adapter, base, name);
  }
});

test('a PEFT DoRA adapter reads with use_dora and its magnitudes, fits its base, and is refused when incomplete', async (t) => {
  if (!needShared(t, 'fixtures', 'dora', 'llama-mha', 'adapter')) return;
  const dir = sharedPath('fixtures', 'dora', 'llama-mha', 'adapter');
  const adapter = readPeftAdapter(dir);
  assert.equal(adapter.config.useDora, true);
  const base = loadLlamaConfig(model('llama-mha'));
  assert.equal(adapter.tensors.size, 3 * 7 * base.numLayers);
  checkAdapterFitsBase(adapter, base, 'dora');
  const key = peftMagnitudeKey(1, 'down_proj');
  assert.equal(key, 'base_model.model.model.layers.1.mlp.down_proj.lora_magnitude_vector'); // as PEFT saved it
  assert.deepEqual(adapter.tensors.get(key)!.shape, [base.hiddenSize]);
  const missing: PeftAdapter = { config: adapter.config, tensors: new Map([...adapter.tensors].filter(([k]) => k !== key)) };
  assert.throws(() => checkAdapterFitsBase(missing, base, 'x'), new UserError(`x has no "${key}", which its target_modules and use_dora require`));
  const plain: PeftAdapter = { config: parseAdapterConfig({ ...adapter.config.raw, use_dora: false }, 'c'), tensors: adapter.tensors };
  assert.throws(() => checkAdapterFitsBase(plain, base, 'x'), /is a DoRA magnitude, but adapter_config.json does not set use_dora/);
  const out = tempDir(t);
  await writePeftAdapter(out, adapter.config, adapter.tensors);
  assert.equal(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')).use_dora, true);
  assert.deepEqual([...readPeftAdapter(out).tensors.keys()].sort(), [...adapter.tensors.keys()].sort());
});

test('adapter_model.bin and adapter_model.safetensors give the same adapter', (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha', 'adapter')) return;
  const fromBin = readPeftAdapter(copyAdapter(t, 'llama-mha', ['adapter_config.json', 'adapter_model.bin']));
  const fromSafetensors = readPeftAdapter(model('llama-mha', 'adapter'));
  assert.deepEqual(new Map([...fromBin.tensors].sort()), new Map([...fromSafetensors.tensors].sort()));
});

test('written adapters are byte-identical to what PEFT wrote, and read back the same', async (t) => {
  for (const name of ['llama-mha', 'llama3-rope']) {
    if (!needShared(t, 'fixtures', 'models', name, 'adapter')) return;
    const original = readPeftAdapter(model(name, 'adapter'));
    const out = join(tempDir(t), 'nested', 'adapter');
    await writePeftAdapter(out, original.config, original.tensors);
    assert.deepEqual(readdirSync(out).sort(), ['adapter_config.json', 'adapter_model.safetensors']);
    for (const file of ['adapter_config.json', 'adapter_model.safetensors']) {
      assert.ok(readFileSync(join(out, file)).equals(readFileSync(model(name, 'adapter', file))), `${name}/${file}`);
    }
    const back = readPeftAdapter(out);
    assert.deepEqual(back.tensors, original.tensors);
    assert.deepEqual({ ...back.config, raw: null }, { ...original.config, raw: null });
  }
});

test('a new adapter is written with PEFT 0.21\'s field set', async (t) => {
  const config = makeAdapterConfig({ r: 8, loraAlpha: 16, loraDropout: 0.05, targetModules: ['q_proj', 'v_proj'], baseModelNameOrPath: 'base' });
  const tensors = new Map<string, HostTensor>([
    [peftKey(0, 'q_proj', 'A'), { dtype: 'F32', shape: [8, 4], data: new Float32Array(32).fill(0.5) }],
  ]);
  const dir = tempDir(t);
  await writePeftAdapter(dir, config, tensors);
  const json = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
  if (needShared(t, 'fixtures', 'models', 'llama-mha', 'adapter')) {
    const peft = JSON.parse(readFileSync(model('llama-mha', 'adapter', 'adapter_config.json'), 'utf8'));
    assert.deepEqual(Object.keys(json), Object.keys(peft), 'same fields, same (sorted) order');
  }
  assert.deepEqual([json.r, json.lora_alpha, json.lora_dropout, json.target_modules, json.base_model_name_or_path, json.inference_mode], [8, 16, 0.05, ['q_proj', 'v_proj'], 'base', true]);
  assert.match(readFileSync(join(dir, 'adapter_config.json'), 'utf8'), /"lora_dropout": 0.05,\n/);
  const zeroDropout = makeAdapterConfig({ r: 8, loraAlpha: 16, loraDropout: 0, targetModules: ['q_proj'] });
  await writePeftAdapter(dir, zeroDropout, tensors);
  assert.match(readFileSync(join(dir, 'adapter_config.json'), 'utf8'), /"lora_dropout": 0.0,\n/, 'a float, as Python writes it');
});

test('target_modules as PEFT matches them: names, dotted suffixes, a regex, layers_to_transform', () => {
  const settings = { peft_type: 'LORA', r: 2 };
  const pairs = (raw: Record<string, unknown>, layers = 3) =>
    adapterTargets(parseAdapterConfig({ ...settings, ...raw }, 'c'), layers).map((x) => `${x.layer}.${x.projection}`);
  assert.deepEqual(pairs({ target_modules: ['q_proj', 'mlp.down_proj'] }, 2), ['0.q_proj', '0.down_proj', '1.q_proj', '1.down_proj']);
  assert.deepEqual(pairs({ target_modules: ['model.layers.1.self_attn.v_proj'] }), ['1.v_proj']);
  assert.deepEqual(pairs({ target_modules: '.*\\.(0|2)\\.self_attn\\.(q|k)_proj' }), ['0.q_proj', '0.k_proj', '2.q_proj', '2.k_proj']);
  assert.deepEqual(pairs({ target_modules: ['o_proj'], layers_to_transform: 1 }), ['1.o_proj']);
  assert.deepEqual(pairs({}, 1), ['0.q_proj', '0.v_proj'], 'PEFT\'s default targets for llama');
});

test('an adapter that does not fit the base model is refused at the first mismatch', (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-gqa', 'adapter')) return;
  const gqaAdapter = readPeftAdapter(model('llama-gqa', 'adapter'));
  const mha = loadLlamaConfig(model('llama-mha'));
  assert.throws(() => checkAdapterFitsBase(gqaAdapter, mha, 'llama-gqa/adapter'), new UserError(
    'llama-gqa/adapter: "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight" has shape [4, 96], but r=4 on this base model needs [4, 160]',
  ));
  const base = loadLlamaConfig(model('llama-gqa'));
  const edited = (edit: (a: PeftAdapter) => void): PeftAdapter => {
    const copy = { config: gqaAdapter.config, tensors: new Map(gqaAdapter.tensors) };
    edit(copy);
    return copy;
  };
  const a0 = peftKey(0, 'q_proj', 'A');
  const cases: [PeftAdapter, string][] = [
    [edited((a) => a.tensors.delete(peftKey(2, 'up_proj', 'B'))), 'x has no "base_model.model.model.layers.2.mlp.up_proj.lora_B.weight", which its target_modules require'],
    [edited((a) => a.tensors.set(peftKey(3, 'q_proj', 'A'), a.tensors.get(a0)!)), 'x: "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight" is for layer 3, but the base model has 3 layers'],
    [edited((a) => a.tensors.set('base_model.model.lm_head.weight', a.tensors.get(a0)!)), 'x: "base_model.model.lm_head.weight" is not a LoRA A or B weight of a LLaMA projection'],
    [edited((a) => (a.config = parseAdapterConfig({ ...a.config.raw, target_modules: ['q_proj'] }, 'c'))), 'x: "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight" is not selected by target_modules'],
    [edited((a) => a.tensors.set(a0, { dtype: 'F32', shape: [64, 4], data: new Float32Array(256) })), `x: "${a0}" has shape [64, 4], but r=4 on this base model needs [4, 64]`],
  ];
  for (const [adapter, message] of cases) assert.throws(() => checkAdapterFitsBase(adapter, base, 'x'), new UserError(message));
  // modules_to_save copies: more rows than the base's vocabulary is a grown one (tokens added in training), fewer is
  // an error, and the two copies must agree (llama-gqa ties its head; here as if untied, as lm_head copies need)
  const untied = { ...base, tieWordEmbeddings: false };
  const withCopies = (embedRows: number, headRows: number) => edited((a) => {
    a.config = parseAdapterConfig({ ...a.config.raw, modules_to_save: ['embed_tokens', 'lm_head'] }, 'c');
    const rows = (n: number) => ({ dtype: 'F32' as const, shape: [n, base.hiddenSize], data: new Float32Array(n * base.hiddenSize) });
    a.tensors.set(peftModuleKey('embed_tokens'), rows(embedRows));
    a.tensors.set(peftModuleKey('lm_head'), rows(headRows));
  });
  const V = base.vocabSize;
  checkAdapterFitsBase(withCopies(V + 2, V + 2), untied, 'x');
  assert.equal(savedVocabSize(withCopies(V + 2, V + 2)), V + 2);
  assert.throws(() => checkAdapterFitsBase(withCopies(V - 1, V - 1), untied, 'x'), new UserError(
    `x: "base_model.model.model.embed_tokens.weight" (modules_to_save embed_tokens) has shape [${V - 1}, 64], but the base model's is [${V}, 64], fewer rows than the base's vocabulary: it was trained on another base`,
  ));
  assert.throws(() => checkAdapterFitsBase(withCopies(V + 2, V + 1), untied, 'x'), new UserError(
    `x: "base_model.model.model.embed_tokens.weight" has ${V + 2} rows but "base_model.model.lm_head.weight" has ${V + 1}: the copies must share one vocabulary size`,
  ));
  const qwen = parseLlamaConfig({ model_type: 'qwen2', vocab_size: 10, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 3, num_attention_heads: 8, num_key_value_heads: 2 }, 'q');
  checkAdapterFitsBase(gqaAdapter, qwen, 'same shapes, another family');
});

test('reading an adapter folder: what is missing, empty or unsupported is a UserError that says so', async (t) => {
  const dir = tempDir(t);
  assert.throws(() => readPeftAdapter(dir), new UserError(`${dir} has no adapter_config.json: pass the folder that holds adapter_config.json and adapter_model.safetensors`));
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'] }));
  assert.throws(() => readPeftAdapter(dir), /has adapter_config.json but neither adapter_model.safetensors nor adapter_model.bin/);
  await writeTorchStateDict(join(dir, 'adapter_model.bin'), []); // alpaca-lora's empty save with newer PEFT
  assert.throws(() => readPeftAdapter(dir), (e: Error) => e instanceof UserError && /adapter_model.bin holds no LoRA weights \(0 tensors/.test(e.message));
  const unsupported: [Record<string, unknown>, RegExp][] = [
    [{ peft_type: 'PREFIX_TUNING' }, /peft_type "PREFIX_TUNING" is not supported \(only LORA\)/],
    [{ rank_pattern: { q_proj: 16 } }, /rank_pattern is set, but this is not supported \(per-module ranks\)/],
    [{ alpha_pattern: { q_proj: 32 } }, /alpha_pattern is set, but this is not supported \(per-module alphas\)/],
    [{ modules_to_save: ['score'] }, /modules_to_save \["score"\] is not supported: only embed_tokens and lm_head/],
    [{ bias: 'all' }, /bias "all" is not supported/],
    [{ r: 0 }, /r must be a positive integer, got 0/],
    [{ lora_dropout: 1.5 }, /lora_dropout must be in \[0, 1\)/],
    [{ target_modules: [] }, /target_modules must be a list of module names or a regex string/],
  ];
  for (const [edit, message] of unsupported) {
    assert.throws(() => parseAdapterConfig({ peft_type: 'LORA', r: 8, ...edit }, 'a/adapter_config.json'), (e: Error) => e instanceof UserError && e.message.startsWith('a/adapter_config.json: ') && message.test(e.message), String(message));
  }
  mkdirSync(join(dir, 'bad'));
  writeFileSync(join(dir, 'bad', 'adapter_config.json'), '{');
  assert.throws(() => readPeftAdapter(join(dir, 'bad')), /adapter_config.json is not valid JSON/);
});
