// The export commands end to end, as a user runs them: export-hf's folder scores what base + adapter scores;
// export-state-dict and export-gguf write what llama.cpp and Meta's code expect; bad input (an adapter that
// does not fit, a non-empty output folder, an existing GGUF file, a disk that fills up mid-write) fails with
// a message and leaves nothing half-written behind.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { GgufFile } from '../../src/formats/gguf.ts';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { toFloat32 } from '../../src/formats/host-tensor.ts';
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

test('export-hf writes shards that `score` reads back with the loss and logits of base + adapter', (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const out = join(work, 'hf');
  const r = runCli(['export-hf', '--base_model', mha(), '--lora-weights', mhaAdapter(), '--output_dir', out, '--max_shard_size', '100KB', '--backend', 'js']);
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

test('export-state-dict writes consolidated.00.pth and params.json', (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const out = join(work, 'meta');
  const r = runCli(['export-state-dict', '--base_model', mha(), '--lora_weights', mhaAdapter(), '--output_dir', out, '--dtype', 'float16']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(out).sort(), ['consolidated.00.pth', 'params.json']);
  assert.equal(JSON.parse(readFileSync(join(out, 'params.json'), 'utf8')).dim, 64);
});

test('export-gguf writes a llama model with its vocabulary, and --adapter_only a GGUF LoRA', (t) => {
  if (!needShared(t, 'fixtures', 'trainer', 'final_adapter')) return;
  const base = sharedPath('fixtures', 'trainer', 'base');
  const adapter = sharedPath('fixtures', 'trainer', 'final_adapter');
  const model = join(work, 'tiny.gguf');
  const r = runCli(['export-gguf', '--base_model', base, '--lora_weights', adapter, '--outfile', model, '--outtype', 'f16']);
  assert.equal(r.status, 0, r.stderr);
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
  const a = runCli(['export-gguf', '--base_model', base, '--lora_weights', adapter, '--outfile', lora, '--adapter_only', '--outtype', 'f32']);
  assert.equal(a.status, 0, a.stderr);
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
  assert.match(badType.stderr, /--outtype must be one of f32, f16, bf16, q8_0, q4_0/);
});
