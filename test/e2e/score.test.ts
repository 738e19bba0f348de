// `alpaca-lora score` end to end: the golden batch through the real command reproduces PyTorch's loss
// and logits; bad input fails with a message naming what is wrong.

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { toFloat32 } from '../../src/formats/host-tensor.ts';
import { runCli } from '../helpers/cli.ts';
import { assertClose, fixtureDir, goldenFloat, readGolden } from '../helpers/golden.ts';
import { needShared } from '../helpers/shared.ts';

function batchFile(dir: string, model: string): string {
  const g = readGolden(model);
  const { B, T } = g.batch;
  const rows = (a: Int32Array) => Array.from({ length: B }, (_, b) => Array.from(a.subarray(b * T, b * T + T)));
  const path = join(dir, 'batch.json');
  writeFileSync(path, JSON.stringify({ input_ids: rows(g.batch.inputIds), attention_mask: rows(g.batch.attentionMask!), labels: rows(g.batch.labels!) }));
  return path;
}

test('score reproduces the reference loss and logits, with and without the adapter', (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const dir = mkdtempSync(join(tmpdir(), 'score-'));
  const batch = batchFile(dir, 'llama-mha');
  const g = readGolden('llama-mha');
  const logitsPath = join(dir, 'logits.safetensors');
  const base = runCli(['score', '--base_model', fixtureDir('llama-mha'), '--batch', batch, '--logits_out', logitsPath, '--backend', 'js']);
  assert.equal(base.status, 0, base.stderr);
  assert.match(base.stderr, /^backend: js/);
  const out = JSON.parse(base.stdout.trim());
  assert.ok(Math.abs(out.loss - g.json.base_loss) < 1e-5 * g.json.base_loss, `loss ${out.loss} vs ${g.json.base_loss}`);
  assert.equal(out.tokens, 17);
  const logits = readSafetensors(logitsPath).get('logits')!;
  assert.deepEqual(logits.shape, [2, 12, 512]);
  const mask = g.batch.attentionMask!;
  assertClose(toFloat32(logits), goldenFloat(g, 'base.logits'), 1e-5, 1e-5, 'logits', (i) => mask[Math.floor(i / 512)] === 0);

  const lora = runCli(['score', '--base-model', fixtureDir('llama-mha'), '--lora-weights', join(fixtureDir('llama-mha'), 'adapter'), '--batch', batch, '--backend', 'js']);
  assert.equal(lora.status, 0, lora.stderr);
  assert.ok(Math.abs(JSON.parse(lora.stdout).loss - g.json.lora_loss) < 1e-5 * g.json.lora_loss);
});

test('score refuses bad input with a message naming it', (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const dir = mkdtempSync(join(tmpdir(), 'score-bad-'));
  const ragged = join(dir, 'ragged.json');
  writeFileSync(ragged, JSON.stringify({ input_ids: [[1, 2, 3], [1, 2]] }));
  const r1 = runCli(['score', '--base_model', fixtureDir('llama-mha'), '--batch', ragged, '--backend', 'js']);
  assert.equal(r1.status, 1);
  assert.match(r1.stderr, /ragged\.json: "input_ids" row 1 has 2 tokens/);

  const good = batchFile(dir, 'llama-mha');
  const r2 = runCli(['score', '--base_model', fixtureDir('llama-mha'), '--lora_weights', join(fixtureDir('llama-gqa'), 'adapter'), '--batch', good, '--backend', 'js']);
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /has shape \[4, 96\], but r=4 on this base model needs \[4, 160\]/);

  const r3 = runCli(['score', '--base_model', dir, '--batch', good]);
  assert.equal(r3.status, 1);
  assert.match(r3.stderr, /has no config\.json/);

  const r4 = runCli(['score', '--base_model', fixtureDir('llama-mha'), '--batch', ragged, '--bogus_flag', '1']);
  assert.equal(r4.status, 1);
  assert.match(r4.stderr, /unknown flag --bogus_flag/);
});
