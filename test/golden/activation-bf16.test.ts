// The engine with bf16 activations (--activation_dtype bf16) against the float32 PyTorch reference
// (../shared/fixtures/models): base and LoRA logits and losses and every LoRA gradient, on js and cpu; and how
// --activation_dtype auto resolves. Not the f32 goldens (llama-engine.test.ts) and not op parity.
//
// Tolerances: bf16 keeps 8 significant bits, so every stored activation carries up to 2^-9 = 2e-3 relative
// rounding, and it compounds over the residual stream, the layers and the backward. Measured worst over the three
// models on both backends: logits 8.1e-3 of the largest reference logit, losses 1.1e-4 relative, gradients 2.1e-2
// of the tensor's largest magnitude. Asserted at about 2.5x that: 2e-2, 3e-4, 5e-2.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Backend } from '../../src/engine/backend.ts';
import { peftParamName } from '../../src/formats/weight-names.ts';
import { resolveActivationDtype } from '../../src/model/activation-dtype.ts';
import { forwardBackward, reserveActivations, scoreBatch } from '../../src/model/compute.ts';
import type { LoraUse, Model } from '../../src/model/llama.ts';
import { loadModel } from '../../src/model/load.ts';
import { loadLoraAdapter } from '../../src/model/lora-io.ts';
import { loraParameters, zeroLoraGrads, type LoraAdapter } from '../../src/model/lora.ts';
import { testBackends } from '../helpers/backends.ts';
import { fixtureDir, goldenFloat, maxAbs, readGolden, type Golden } from '../helpers/golden.ts';
import { needShared } from '../helpers/shared.ts';

const MODELS = ['llama-mha', 'llama-gqa', 'llama3-rope'];
const LOGITS_OF_MAX = 2e-2;
const LOSS_REL = 3e-4;
const GRAD_OF_MAX = 5e-2;

/** The model with its activations stored as bf16 for passes over the fixture's batch. */
async function bf16Model(be: Backend, name: string, g: Golden, lora: LoraUse | null): Promise<Model> {
  const m = await loadModel(be, fixtureDir(name));
  reserveActivations(m, g.batch.B, g.batch.T, lora, { checkpointing: false, dtype: 'bf16' });
  return m;
}

async function checkLogitsAndLoss(m: Model, g: Golden, lora: LoraUse | null, which: 'base' | 'lora'): Promise<void> {
  const V = m.config.vocabSize;
  const logits = new Float32Array(g.batch.B * g.batch.T * V);
  const r = await scoreBatch(m, g.batch, lora, (row0, _rows, chunk) => logits.set(chunk, row0 * V));
  const want = goldenFloat(g, `${which}.logits`);
  const mask = g.batch.attentionMask;
  const bound = LOGITS_OF_MAX * maxAbs(want);
  for (let i = 0; i < want.length; i++) {
    if (mask && mask[Math.floor(i / V)] === 0) continue;
    if (!(Math.abs(logits[i]! - want[i]!) <= bound)) assert.fail(`${which} logits[${i}]: ${logits[i]} vs reference ${want[i]} (bound ${bound})`);
  }
  const loss = r.lossSum / r.tokens, expected = which === 'base' ? g.json.base_loss : g.json.lora_loss;
  assert.ok(Math.abs(loss - expected) <= LOSS_REL * expected, `${which} loss ${loss} vs reference ${expected}`);
}

async function checkGradients(be: Backend, m: Model, g: Golden, adapter: LoraAdapter): Promise<void> {
  const lora = { adapter, dropout: 0, seed: 0 };
  const r = await forwardBackward(m, g.batch, lora, 0);
  zeroLoraGrads(be, adapter);
  await forwardBackward(m, g.batch, lora, 1 / r.tokens);
  for (const p of loraParameters(adapter)) {
    const [layer, proj, matrix] = /layers\.(\d+)\.\w+\.(\w+)\.lora_([AB])/.exec(p.name)!.slice(1);
    const key = `grad.${peftParamName(Number(layer), proj as never, matrix as 'A' | 'B')}`;
    const want = goldenFloat(g, key), got = (await be.download(p.grad)) as Float32Array;
    const bound = GRAD_OF_MAX * maxAbs(want);
    for (let i = 0; i < want.length; i++) {
      if (!(Math.abs(got[i]! - want[i]!) <= bound)) assert.fail(`${key}[${i}]: ${got[i]} vs reference ${want[i]} (bound ${bound})`);
    }
  }
}

const BACKENDS = testBackends().filter((b) => b.name !== 'cuda');

for (const backend of BACKENDS) {
  for (const name of MODELS) {
    describe(`${name} on ${backend.name}, bf16 activations`, () => {
      test('base and LoRA logits and losses, every LoRA gradient', async (t) => {
        if (!needShared(t, 'fixtures', 'models', name)) return;
        const g = readGolden(name);
        const be = backend.make();
        const probe = await loadModel(be, fixtureDir(name));
        const adapter = loadLoraAdapter(be, probe.config, `${fixtureDir(name)}/adapter`);
        const lora = { adapter, dropout: 0, seed: 0 };
        const m = await bf16Model(be, name, g, lora);
        await checkLogitsAndLoss(m, g, null, 'base');
        await checkLogitsAndLoss(m, g, lora, 'lora');
        await checkGradients(be, m, g, adapter);
      });
    });
  }
}

test('--activation_dtype auto: bf16 on a bf16 base on cpu, f32 on js and on an f32 base; cuda refuses 16-bit', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha-bf16')) return;
  for (const backend of BACKENDS) {
    const bf16Base = await loadModel(backend.make(), fixtureDir('llama-mha-bf16'));
    const f32Base = await loadModel(backend.make(), fixtureDir('llama-mha'));
    assert.equal(resolveActivationDtype('auto', bf16Base), backend.name === 'cpu' ? 'bf16' : 'f32', backend.name);
    assert.equal(resolveActivationDtype('auto', f32Base), 'f32');
    assert.equal(resolveActivationDtype('f16', f32Base), 'f16');
  }
  const cudaLike = { be: { name: 'cuda' }, weights: { layers: [] } } as unknown as Model;
  assert.equal(resolveActivationDtype('auto', cudaLike), 'f32');
  assert.throws(() => resolveActivationDtype('bf16', cudaLike), /the cuda backend keeps activations in float32; pass --activation_dtype f32/);
});
