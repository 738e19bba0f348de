// resizeVocab follows transformers' resize_token_embeddings with mean_resizing (its default): old rows kept bit
// for bit, each new row the mean of the old rows of the same matrix (transformers samples N(mean, 1e-9 * cov)
// around it; we take the mean, see src/model/resize-vocab.ts). The mean is computed here independently, in
// float64 over the original rows, and the new rows must be its float32 rounding (bf16 weights: its bf16 rounding).
// On the js and cpu backends, untied (llama-mha) and tied heads.

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { JsBackend } from '../../../src/backends/js/index.ts';
import type { Backend } from '../../../src/engine/backend.ts';
import { loadModel } from '../../../src/model/load.ts';
import { resizeVocab } from '../../../src/model/resize-vocab.ts';
import { fixtureDir } from '../../helpers/golden.ts';
import { needCpu } from '../../helpers/cpu-backend.ts';
import { needShared } from '../../helpers/shared.ts';

const bf16 = (x: number) => {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] = (u[0]! + 0x7fff + ((u[0]! >> 16) & 1)) & 0xffff0000; // round to nearest even
  return f[0]!;
};

async function check(t: TestContext, be: Backend | null, dtype: 'f32' | 'bf16', tied: boolean): Promise<void> {
  if (!be || !needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const m = await loadModel(be, fixtureDir('llama-mha'), { dtype });
  if (tied) m.weights.lmHead = m.weights.embed;
  const V = m.config.vocabSize, C = m.config.hiddenSize, added = 3;
  const before = [(await be.download(m.weights.embed)) as Float32Array, (await be.download(m.weights.lmHead)) as Float32Array];
  await resizeVocab(m, V + added);
  assert.equal(m.config.vocabSize, V + added);
  assert.equal(m.weights.lmHead === m.weights.embed, tied, 'a tied head stays tied');
  const after = [(await be.download(m.weights.embed)) as Float32Array, (await be.download(m.weights.lmHead)) as Float32Array];
  for (const [i, old] of before.entries()) {
    const grown = after[i]!;
    assert.equal(grown.length, (V + added) * C);
    assert.deepEqual(grown.subarray(0, V * C), old, 'old rows untouched');
    for (let c = 0; c < C; c++) {
      let sum = 0;
      for (let v = 0; v < V; v++) sum += old[v * C + c]!;
      const mean = dtype === 'bf16' ? bf16(Math.fround(sum / V)) : Math.fround(sum / V);
      for (let v = V; v < V + added; v++) assert.equal(grown[v * C + c], mean, `row ${v}, column ${c}`);
    }
  }
}

test('resizeVocab appends mean rows to an untied embedding and head (js, f32)', (t) => check(t, new JsBackend(), 'f32', false));
test('resizeVocab grows a tied embedding once (js, f32)', (t) => check(t, new JsBackend(), 'f32', true));
test('resizeVocab on the cpu backend (f32 and bf16 weights)', async (t) => {
  await check(t, needCpu(t), 'f32', false);
  await check(t, needCpu(t), 'bf16', false);
});
test('resizeVocab refuses to shrink', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const m = await loadModel(new JsBackend(), fixtureDir('llama-mha'));
  await assert.rejects(resizeVocab(m, m.config.vocabSize - 1), /cannot shrink the vocabulary/);
});
