// The export commands end to end, as a user runs them: export-hf's folder scores what base + adapter scores;
// export-state-dict writes, after un-permuting q/k, the reference's merged weights (merged_after3.safetensors,
// float16 tolerance); export-gguf writes what llama.cpp expects; bad input (an adapter that
// does not fit, a non-empty output folder, an existing GGUF file, a disk that fills up mid-write) fails with
// a message and leaves nothing half-written behind.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { GgufFile } from '../../src/formats/gguf.ts';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { writeSafetensors } from '../../src/formats/safetensors-write.ts';
import { toFloat32 } from '../../src/formats/host-tensor.ts';
import { TorchFile } from '../../src/formats/torch-pickle.ts';
import { runCli } from '../helpers/cli.ts';
import { assertClose, fixtureDir, readGolden } from '../helpers/golden.ts';
import { needShared, PROJECT_ROOT, sharedPath } from '../helpers/shared.ts';

const work = mkdtempSync(join(tmpdir(), 'export-e2e-'));
after(() => rmSync(work, { recursive: true, force: true }));
const mha = () => fixtureDir('llama-mha');
const mhaAdapter = () => join(fixtureDir('llama-mha'), 'adapter');

function batchFile(): string {
  const g = readGolden('llama-mha');
  const { B, T } = g.batch;
  const rows = (a: Int32Array) => Array.from({ length: B }, (_, b) => Array.from(a.subarray(b * T, b * T + T)));
  const path = join(work, 'batch.json');
  writeFileSync(path, JSON.stringify({ input_ids: rows(g.batch.inputIds), attention_mask: rows(g.batch.attentionMask!), labels: rows(g.batch.labels!) }));
  return path;
}

test('export-hf --json: shards that `score` reads back with the loss and logits of base + adapter', (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const out = join(work, 'hf');
  const r = runCli(['export-hf', '--base_model', mha(), '--lora-weights', mhaAdapter(), '--output_dir', out, '--max_shard_size', '100KB', '--backend', 'js', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.equal(result.adapted, 14);
  assert.equal(result.files.filter((f: string) => f.endsWith('.safetensors')).length, 7);
  assert.ok(readdirSync(out).includes('model.safetensors.index.json'));
  const batch = batchFile();
  const merged = runCli(['score', '--base_model', out, '--batch', batch, '--logits_out', join(work, 'merged.safetensors'), '--backend', 'js']);
  const lora = runCli(['score', '--base_model', mha(), '--lora_weights', mhaAdapter(), '--batch', batch, '--logits_out', join(work, 'lora.safetensors'), '--backend', 'js']);
  assert.equal(merged.status, 0, merged.stderr);
  const [a, b] = [JSON.parse(merged.stdout), JSON.parse(lora.stdout)];
  assert.ok(Math.abs(a.loss - b.loss) <= 1e-6 * b.loss, `merged loss ${a.loss} vs base + adapter ${b.loss}`);
  const logits = (f: string) => toFloat32(readSafetensors(join(work, f)).get('logits')!);
  const mask = readGolden('llama-mha').batch.attentionMask!;
  assertClose(logits('merged.safetensors'), logits('lora.safetensors'), 1e-5, 1e-5, 'logits', (i) => mask[Math.floor(i / 512)] === 0);
});

test('export-hf refuses an adapter that does not fit and a non-empty folder; --overwrite replaces it', (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-gqa')) return;
  const out = join(work, 'refused');
  const misfit = runCli(['export-hf', '--base_model', mha(), '--lora_weights', join(fixtureDir('llama-gqa'), 'adapter'), '--output_dir', out, '--backend', 'js']);
  assert.equal(misfit.status, 1);
  assert.match(misfit.stderr, /error: .*adapter: "base_model\.model\.model\.layers\.0\.\S+" has shape \[\d+, \d+\], but r=4 on this base model needs/);
  assert.throws(() => readdirSync(out), /ENOENT/, 'nothing was written');

  mkdirSync(out);
  writeFileSync(join(out, 'notes.txt'), 'mine');
  const args = ['export-hf', '--base_model', mha(), '--lora_weights', mhaAdapter(), '--output_dir', out, '--no_verify'];
  const busy = runCli(args);
  assert.equal(busy.status, 1);
  assert.match(busy.stderr, /--output_dir .*refused exists and is not empty: pass an empty or new folder, or --overwrite to replace it/);
  assert.deepEqual(readdirSync(out), ['notes.txt']);
  const forced = runCli([...args, '--overwrite']);
  assert.equal(forced.status, 0, forced.stderr);
  assert.deepEqual(readdirSync(out).sort(), ['config.json', 'generation_config.json', 'model.safetensors']);
  assert.match(forced.stdout, /^wrote 3 files \([\d.]+ KB\) to .*refused: model\.safetensors, config\.json, generation_config\.json\nmerged the adapter .* into 14 weights of the base\nnot verified \(--verify false\)\n$/);
});

test('export-hf as the seed runs it: the base from $BASE_MODEL, the output in ./hf_ckpt; sentences name what was verified', (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const cwd = mkdtempSync(join(work, 'seed-'));
  const none = runCli(['export-hf', '--lora_weights', mhaAdapter()], { cwd, env: { BASE_MODEL: '' } });
  assert.match(none.stderr, /^error: export-hf: --base_model is required: pass it, or set BASE_MODEL as the seed's export scripts read it/);
  const r = runCli(['export-hf', '--lora_weights', mhaAdapter(), '--backend', 'js'], { cwd, env: { BASE_MODEL: mha() } });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(readdirSync(join(cwd, 'hf_ckpt')).includes('config.json'));
  assert.match(r.stdout, /^wrote \d+ files \([\d.]+ KB\) to \.\/hf_ckpt: /);
  assert.match(r.stdout, /\nverified: every weight read back equals the merge, and the export's logits on a probe batch match base \+ adapter \(largest difference \S+, allowed \S+\)\n$/);
});

test('a disk that fills up mid-write (a 150 KB file size limit) fails the export and leaves nothing behind', (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const parent = join(work, 'full-disk');
  mkdirSync(parent);
  const cli = join(PROJECT_ROOT, 'bin', 'alpaca-lora.js');
  for (const command of [
    `export-hf --base_model ${mha()} --lora_weights ${mhaAdapter()} --output_dir ${join(parent, 'hf')} --no_verify`,
    `export-state-dict --base_model ${mha()} --lora_weights ${mhaAdapter()} --output_dir ${join(parent, 'meta')} --no_verify`,
    `export-gguf --base_model ${sharedPath('fixtures', 'trainer', 'base')} --outfile ${join(parent, 'm.gguf')} --outtype f32`,
  ]) {
    // SIGXFSZ ignored: writes past the limit fail with EFBIG, as they fail with ENOSPC on a full disk.
    const r = spawnSync('bash', ['-c', `trap '' XFSZ; ulimit -f 150; exec "${process.execPath}" "${cli}" ${command}`], { encoding: 'utf8' });
    assert.equal(r.status, 1, `${command}: ${r.stderr}`);
    assert.match(r.stderr, /EFBIG|file too large/i);
    assert.deepEqual(readdirSync(parent), [], `${command.split(' ')[0]} left files behind`);
  }
});

/** The reference's after-3-steps adapter (golden.safetensors after3.*) as a PEFT folder. */
async function after3Adapter(): Promise<string> {
  const dir = join(work, 'after3-adapter');
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(mhaAdapter(), 'adapter_config.json'), join(dir, 'adapter_config.json'));
  const tensors = [...readGolden('llama-mha').tensors].filter(([k]) => k.startsWith('after3.'));
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors.map(([k, v]) => [k.slice(7).replace('.default.weight', '.weight'), v] as const));
  return dir;
}

const META_LAYER_NAMES: Record<string, string> = {
  'self_attn.q_proj.weight': 'attention.wq.weight', 'self_attn.k_proj.weight': 'attention.wk.weight',
  'self_attn.v_proj.weight': 'attention.wv.weight', 'self_attn.o_proj.weight': 'attention.wo.weight',
  'mlp.gate_proj.weight': 'feed_forward.w1.weight', 'mlp.down_proj.weight': 'feed_forward.w2.weight',
  'mlp.up_proj.weight': 'feed_forward.w3.weight', 'input_layernorm.weight': 'attention_norm.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
};
const META_NAMES: Record<string, string> = { 'model.embed_tokens.weight': 'tok_embeddings.weight', 'model.norm.weight': 'norm.weight', 'lm_head.weight': 'output.weight' };

/** Meta's name of an HF weight (transformers' convert_llama_weights_to_hf mapping, read backwards). */
function metaName(hf: string): string {
  const layer = /^model\.layers\.(\d+)\.(.+)$/.exec(hf);
  const name = layer ? META_LAYER_NAMES[layer[2]!] : META_NAMES[hf];
  assert.ok(name, `no Meta name for ${hf}`);
  return layer ? `layers.${layer[1]}.${name}` : name;
}

/**
 * Meta's q or k rows (heads x headDim, cols) in HF order. convert_llama_weights_to_hf turns Meta into HF with
 * permute(w) = w.view(heads, headDim / 2, 2, cols).transpose(1, 2).reshape(heads * headDim, cols): HF row
 * (h, j, i) is Meta row (h, i, j), for j < 2 and i < headDim / 2.
 */
function metaToHf(w: Float32Array, heads: number, headDim: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) for (let j = 0; j < 2; j++) for (let i = 0; i < headDim / 2; i++) {
    const meta = h * headDim + 2 * i + j;
    out.set(w.subarray(meta * cols, (meta + 1) * cols), (h * headDim + j * (headDim / 2) + i) * cols);
  }
  return out;
}

test('export-state-dict writes consolidated.00.pth and params.json; every tensor, q/k un-permuted, is the reference merged weight', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha', 'merged_after3.safetensors')) return;
  const out = join(work, 'meta');
  const r = runCli(['export-state-dict', '--base_model', mha(), '--lora_weights', await after3Adapter(), '--output_dir', out, '--dtype', 'float16']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^wrote 2 files \([\d.]+ KB\) to .*meta: consolidated\.00\.pth, params\.json\n.*\nverified: every weight read back from the checkpoint equals the merge\n$/);
  assert.deepEqual(readdirSync(out).sort(), ['consolidated.00.pth', 'params.json']);
  const params = JSON.parse(readFileSync(join(out, 'params.json'), 'utf8'));
  assert.equal(params.dim, 64);
  const reference = readSafetensors(join(mha(), 'merged_after3.safetensors'));
  const file = TorchFile.open(join(out, 'consolidated.00.pth'));
  t.after(() => file.close());
  assert.deepEqual(file.names().sort(), [...reference.keys()].map(metaName).sort());
  const headDim = params.dim / params.n_heads;
  for (const [name, expected] of reference) {
    const stored = file.read(metaName(name));
    assert.equal(stored.dtype, 'F16', name);
    assert.deepEqual(stored.shape, expected.shape, name);
    const heads = name.endsWith('q_proj.weight') ? params.n_heads : name.endsWith('k_proj.weight') ? params.n_kv_heads ?? params.n_heads : 0;
    const actual = heads ? metaToHf(toFloat32(stored), heads, headDim, params.dim) : toFloat32(stored);
    // One float16 rounding (2^-11 relative; 2^-25 absolute below its normal range) of a float32 merge (1e-6).
    assertClose(actual, toFloat32(expected), 2 ** -11 + 1e-6, 2 ** -25, `${metaName(name)} vs ${name}`);
  }
});

test('export-gguf writes a llama model with its vocabulary, and --adapter_only a GGUF LoRA', (t) => {
  if (!needShared(t, 'fixtures', 'trainer', 'final_adapter')) return;
  const base = sharedPath('fixtures', 'trainer', 'base');
  const adapter = sharedPath('fixtures', 'trainer', 'final_adapter');
  const model = join(work, 'tiny.gguf');
  const r = runCli(['export-gguf', '--base_model', base, '--lora_weights', adapter, '--outfile', model, '--outtype', 'f16']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^wrote .*tiny\.gguf \([\d.]+ [KM]B, 20 tensors, f16\)\nmerged the adapter .* into \d+ weights of the base\nverified: every weight read back equals the merge\n$/);
  const f = GgufFile.open(model);
  t.after(() => f.close());
  assert.equal(f.get('general.architecture'), 'llama');
  assert.equal(f.get('general.file_type'), 1);
  assert.deepEqual(['block_count', 'embedding_length', 'feed_forward_length', 'attention.head_count', 'rope.dimension_count'].map((k) => f.get(`llama.${k}`)), [2, 32, 64, 4, 8]);
  assert.equal((f.get('tokenizer.ggml.tokens') as string[]).length, 32000);
  assert.equal(f.tensors.size, 2 + 2 * 9, 'tied embeddings: no output.weight');
  assert.equal(f.tensors.get('blk.0.attn_q.weight')!.type, 'F16');
  assert.equal(f.tensors.get('blk.0.attn_norm.weight')!.type, 'F32');
  assert.deepEqual(f.tensors.get('blk.1.ffn_down.weight')!.shape, [32, 64]);

  const again = runCli(['export-gguf', '--base_model', base, '--outfile', model]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /--outfile .*tiny\.gguf exists: pass a new path, or --overwrite to replace it/);

  const lora = join(work, 'tiny-lora.gguf');
  const a = runCli(['export-gguf', '--base_model', base, '--lora_weights', adapter, '--outfile', lora, '--adapter_only', '--outtype', 'f32', '--json']);
  assert.equal(a.status, 0, a.stderr);
  assert.deepEqual(Object.keys(JSON.parse(a.stdout)).sort(), ['adapted', 'bytes', 'outfile', 'tensors']);
  const l = GgufFile.open(lora);
  t.after(() => l.close());
  assert.deepEqual([l.get('general.type'), l.get('adapter.type'), l.get('adapter.lora.alpha')], ['adapter', 'lora', 8]);
  assert.deepEqual(l.tensors.get('blk.0.attn_q.weight.lora_a')!.shape, [4, 32]);
  assert.deepEqual(l.tensors.get('blk.0.attn_q.weight.lora_b')!.shape, [32, 4]);
  assert.equal(l.tensors.size, 8);

  const noAdapter = runCli(['export-gguf', '--base_model', base, '--outfile', join(work, 'x.gguf'), '--adapter_only']);
  assert.equal(noAdapter.status, 1);
  assert.match(noAdapter.stderr, /--adapter_only needs --lora_weights/);
  const badType = runCli(['export-gguf', '--base_model', base, '--outfile', join(work, 'x.gguf'), '--outtype', 'q5_k']);
  assert.equal(badType.status, 1);
  assert.match(badType.stderr, /--outtype must be one of f32, f16, bf16, q8_0, .*q4_0.*, got "q5_k"/);
});
