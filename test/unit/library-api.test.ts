// The package's own name resolves to the library API (package.json "exports"), and a user can score a
// model through it without the CLI.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as api from 'alpaca-lora-ts';
import { fixtureDir, readGolden } from '../helpers/golden.ts';
import { needShared } from '../helpers/shared.ts';

test('the library API exports the commands as functions', () => {
  for (const name of ['finetune', 'score', 'generate', 'generateText', 'loadRuntime', 'loadModel', 'loadTokenizer', 'exportHf', 'exportGguf', 'exportStateDict', 'startServer']) {
    assert.equal(typeof (api as Record<string, unknown>)[name], 'function', name);
  }
});

test('the backend is passed as an object: selectBackend makes the one --backend names', () => {
  const be: api.Backend = api.selectBackend('js', () => {});
  assert.equal(be.name, 'js');
  assert.throws(() => api.selectBackend('gpu', () => {}), /--backend gpu is not one of js, cpu, cuda, auto/);
});

test('score through the library API reproduces the reference loss', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const g = readGolden('llama-mha');
  const r = await api.score({ backend: api.selectBackend('js', () => {}), baseModel: fixtureDir('llama-mha'), batch: g.batch });
  assert.ok(Math.abs(r.loss - g.json.base_loss) < 1e-5 * g.json.base_loss);
});
