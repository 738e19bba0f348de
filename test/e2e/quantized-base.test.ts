// Quantized bases from the command line: inspect-model on the fixture models (16/32-bit, sharded, NF4, int8) with
// their sizes worked out by hand; finetune --load_in_4bit on a tiny model saves an ordinary PEFT adapter and
// records the quantization in trainer_state.json and report.html; generate (--load_8bit) and export-hf take the
// same flags; contradictory or unknown quantization flags fail in one line naming the flag, before any work.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { EXAMPLE_DATA, writeExampleModel } from '../../src/example/run-example.ts';
import { runCli } from '../helpers/cli.ts';
import { fixtureDir } from '../helpers/golden.ts';
import { needShared, sharedPath } from '../helpers/shared.ts';

const work = mkdtempSync(join(tmpdir(), 'quantized-base-'));
after(() => rmSync(work, { recursive: true, force: true }));
const NF4 = sharedPath('fixtures', 'quant', 'llama-mha-bnb-nf4');
const INT8 = sharedPath('fixtures', 'quant', 'llama-mha-bnb-int8');

// llama-mha: vocab 512, hidden 64, intermediate 160, 2 layers, 4 heads of 16, untied head.
const DENSE = 2 * 512 * 64 + 5 * 64; // embeddings, lm_head, 5 norms: 65,856 parameters
const LINEAR = 2 * (4 * 64 * 64 + 3 * 64 * 160); // 94,208 parameters in 14 linears
const ROWS = 2 * (4 * 64 + 2 * 160 + 64); // 1,280 output rows
const BLOCKS = LINEAR / 64; // 1,472 blocks of 64

function inspect(...args: string[]) {
  const r = runCli(['inspect-model', ...args, '--json']);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('inspect-model: sizes, formats, bytes on disk and in memory of the fixture models', (t) => {
  if (!needShared(t, 'fixtures', 'quant') || !needShared(t, 'fixtures', 'models', 'llama-mha-sharded')) return;
  const mha = inspect(fixtureDir('llama-mha'));
  assert.deepEqual(
    [mha.architecture, mha.layers, mha.hiddenSize, mha.intermediateSize, mha.heads, mha.kvHeads, mha.headDim, mha.vocabSize, mha.context, mha.tiedEmbeddings, mha.quantization],
    ['LlamaForCausalLM', 2, 64, 160, 4, 4, 16, 512, 128, false, null],
  );
  assert.equal(mha.parameters, DENSE + LINEAR);
  assert.equal(mha.bytesOnDisk, statSync(join(fixtureDir('llama-mha'), 'model.safetensors')).size);
  assert.deepEqual(mha.groups.map((g: any) => [g.name, g.tensors, g.parameters, g.storedAs.join(), g.bytesOnDisk]), [
    ['embeddings', 1, 32768, 'f32', 4 * 32768], ['attention', 8, 32768, 'f32', 4 * 32768], ['mlp', 6, 61440, 'f32', 4 * 61440],
    ['norms', 5, 320, 'f32', 4 * 320], ['lm_head', 1, 32768, 'f32', 4 * 32768],
  ]);
  assert.deepEqual(mha.memory, [
    { format: 'as stored', js: 4 * (DENSE + LINEAR), cpu: 4 * (DENSE + LINEAR), cuda: 4 * (DENSE + LINEAR) },
    { format: 'load_in_8bit', js: 4 * DENSE + LINEAR + 4 * ROWS, cpu: 4 * DENSE + LINEAR + 4 * ROWS, cuda: null },
    { format: 'load_in_4bit nf4', js: 4 * DENSE + LINEAR / 2 + 4 * BLOCKS, cpu: 4 * DENSE + LINEAR / 2 + 4 * BLOCKS, cuda: null },
  ]);
  const dq = inspect(fixtureDir('llama-mha'), '--load_in_4bit', '--bnb_4bit_use_double_quant', '--llm_int8_skip_modules', '[model.layers.1]');
  const skipped = LINEAR / 2; // layer 1 stays f32
  assert.deepEqual(dq.memory[1], {
    format: 'load_in_4bit nf4 double quant, skipping model.layers.1',
    js: 4 * (DENSE + skipped) + skipped / 2 + BLOCKS / 2 + 7 * 4 * (1 + 256), // 7 linears quantized: codes, one nested absmax, the map
    cpu: 4 * (DENSE + skipped) + skipped / 2 + BLOCKS / 2 + 7 * 4 * (1 + 256),
    cuda: null,
  });

  const sharded = inspect(fixtureDir('llama-mha-sharded'));
  assert.equal(sharded.files.length, 11);
  assert.equal(sharded.parameters, mha.parameters);

  const nf4 = inspect(NF4);
  assert.match(nf4.quantization, /^4-bit nf4 with double quant/);
  assert.deepEqual(nf4.groups.map((g: any) => [g.name, g.storedAs.join()]), [
    ['embeddings', 'bf16'], ['attention', 'nf4 (blocksize 64, double quant)'], ['mlp', 'nf4 (blocksize 64, double quant)'], ['norms', 'bf16'], ['lm_head', 'bf16'],
  ]);
  assert.equal(nf4.parameters, DENSE + LINEAR);
  assert.deepEqual(nf4.memory, [{ format: 'as stored', js: 4 * DENSE + LINEAR / 2 + BLOCKS + 14 * 4 * (1 + 256), cpu: 2 * DENSE + LINEAR / 2 + BLOCKS + 14 * 4 * (1 + 256), cuda: null }]);
  const int8 = inspect(INT8, '--load_in_4bit');
  assert.equal(int8.requestIgnored, true);
  assert.deepEqual(int8.memory, [{ format: 'as stored', js: 4 * DENSE + LINEAR + 4 * ROWS, cpu: 2 * DENSE + LINEAR + 4 * ROWS, cuda: null }]);

  const text = runCli(['inspect-model', NF4]);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /^ {2}quantization: bitsandbytes 4-bit nf4 with double quant \(compute dtype bfloat16\), stored$/m);
  assert.match(text.stdout, /^ {2}attention +8 +32,768 +nf4 \(blocksize 64, double quant\) +\d/m);
  assert.match(text.stdout, /^ {2}as stored +[\d.]+ kB +[\d.]+ kB +n\/a \(no quantized kernels\)$/m);
});

test('finetune --load_in_4bit: a PEFT adapter, the quantization recorded; generate and export-hf take the flags', async () => {
  const base = join(work, 'tiny');
  await writeExampleModel(base, () => {});
  const out = join(work, 'run');
  const r = runCli(['finetune', '--base_model', base, '--data_path', EXAMPLE_DATA, '--output_dir', out, '--backend', 'js', '--progress', 'false',
    '--load_in_4bit', '--bnb_4bit_use_double_quant', '--bnb_4bit_compute_dtype', 'bfloat16', '--max_steps', '2', '--batch_size', '4', '--micro_batch_size', '4',
    '--val_set_size', '0', '--save_steps', '2', '--lora_target_modules', '[q_proj,v_proj,down_proj]']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^base model: 14 decoder linears 4-bit nf4 with double quant \(compute dtype bfloat16\), quantized on load; LoRA adapters/m);
  const adapterConfig = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
  assert.equal(adapterConfig.peft_type, 'LORA');
  assert.ok(!JSON.stringify(adapterConfig).includes('bnb'), 'the adapter config is an ordinary one');
  const state = JSON.parse(readFileSync(join(out, 'checkpoint-2', 'trainer_state.json'), 'utf8'));
  assert.deepEqual(state.base_quantization, {
    quant_method: 'bitsandbytes', load_in_4bit: true, load_in_8bit: false, llm_int8_skip_modules: null,
    bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: true, bnb_4bit_compute_dtype: 'bfloat16', source: 'load', quantized_linears: 14,
  });
  assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /base_quantization.*14 decoder linears 4-bit nf4 with double quant/s);

  const g = runCli(['generate', '--base_model', base, '--lora_weights', out, '--instruction', 'What is the capital of France?', '--num_beams', '1',
    '--temperature', '0', '--max_new_tokens', '4', '--backend', 'js', '--load_8bit']);
  assert.equal(g.status, 0, g.stderr);
  assert.match(g.stderr, /^base model: 14 decoder linears 8-bit LLM\.int8 \(outlier threshold 6\), quantized on load$/m);

  const e = runCli(['export-hf', '--base_model', base, '--lora_weights', out, '--output_dir', join(work, 'merged'), '--backend', 'js', '--load_in_4bit', '--bnb_4bit_use_double_quant', '--json']);
  assert.equal(e.status, 0, e.stderr);
  assert.match(e.stderr, /^the base's 14 decoder linears are 4-bit nf4 with double quant .*quantized on load: the export holds their dequantized weights with the adapter merged in/m);
  assert.equal(JSON.parse(e.stdout).adapted, 6);
});

test('bad quantization flags fail in one line naming the flag', async () => {
  const base = join(work, 'tiny');
  await writeExampleModel(base, () => {});
  const cases: [string[], RegExp][] = [
    [['finetune', '--base_model', base, '--output_dir', join(work, 'never'), '--load_in_4bit', '--load_in_8bit'], /^error: --load_in_4bit and --load_in_8bit ask for two quantizations: pass one of them$/],
    [['generate', '--base_model', base, '--load_in_4bit', '--bnb_4bit_quant_type', 'nf3'], /^error: --bnb_4bit_quant_type must be nf4 or fp4, got "nf3"$/],
    [['generate', '--base_model', base, '--load_8bit', '--load_in_4bit'], /^error: --load_in_4bit and --load_in_8bit ask for two quantizations/],
    [['serve', '--base_model', base, '--bnb_4bit_use_double_quant'], /^error: --bnb_4bit_use_double_quant true applies only with --load_in_4bit: add --load_in_4bit or drop it$/],
    [['export-hf', '--base_model', base, '--lora_weights', base, '--output_dir', join(work, 'never'), '--load_in_8bit', '--llm_int8_threshold', '-1'], /^error: --llm_int8_threshold must be a number >= 0/],
    [['inspect-model', base, '--load_in_4bit', '--bnb_4bit_compute_dtype', 'int4'], /^error: --bnb_4bit_compute_dtype must be one of float32, bfloat16, float16, got "int4"$/],
    [['export-gguf', '--base_model', base, '--outfile', join(work, 'never.gguf'), '--llm_int8_skip_modules', '[mlp]'], /^error: --llm_int8_skip_modules applies only with --load_in_4bit or --load_in_8bit/],
    [['inspect-model', base, '--load_in_8bit', '--llm_int8_skip_modules', '[mpl]'], /^error: --llm_int8_skip_modules: "mpl" names no module of /],
  ];
  for (const [args, message] of cases) {
    const r = runCli(args);
    assert.equal(r.status, 1, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.trim(), message, args.join(' '));
  }
});
