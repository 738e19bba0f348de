// The engine with --compute_dtype bf16 on a bf16 base (weights loaded as bf16, their products in bf16 with float32
// sums) against the float32 PyTorch reference (../shared/fixtures/models): base and LoRA logits and losses, on js
// (the spec) and on cpu where the CPU has AVX512_BF16. The f32 goldens (llama-engine.test.ts) are unchanged by this
// mode, which is off unless asked for.
//
// Tolerances: bf16 weights and bf16-rounded layer inputs each carry up to 2^-9 = 2e-3 relative rounding, compounding
// over the layers. Measured worst over the three models on js and cpu (identical): logits 9.6e-3 of the largest
// reference logit, losses 6.9e-5 relative. Asserted at about 2.5x that: 2.5e-2 and 2e-4.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyComputeDtype } from '../../src/model/compute-dtype.ts';
import { scoreBatch } from '../../src/model/compute.ts';
import type { LoraUse, Model } from '../../src/model/llama.ts';
import { loadModel } from '../../src/model/load.ts';
import { loadLoraAdapter } from '../../src/model/lora-io.ts';
import { testBackends } from '../helpers/backends.ts';
import { fixtureDir, goldenFloat, maxAbs, readGolden, type Golden } from '../helpers/golden.ts';
import { needShared } from '../helpers/shared.ts';

const MODELS = ['llama-mha', 'llama-gqa', 'llama3-rope'];
const LOGITS_OF_MAX = 2.5e-2;
const LOSS_REL = 2e-4;

async function check(m: Model, g: Golden, lora: LoraUse | null, which: 'base' | 'lora'): Promise<void> {
  const V = m.config.vocabSize;
  const logits = new Float32Array(g.batch.B * g.batch.T * V);
  const r = await scoreBatch(m, g.batch, lora, (row0, _rows, chunk) => logits.set(chunk, row0 * V));
  const want = goldenFloat(g, `${which}.logits`);
  const mask = g.batch.attentionMask;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    if (mask && mask[Math.floor(i / V)] === 0) continue;
    worst = Math.max(worst, Math.abs(logits[i]! - want[i]!));
  }
  const loss = r.lossSum / r.tokens, expected = which === 'base' ? g.json.base_loss : g.json.lora_loss;
  assert.ok(worst <= LOGITS_OF_MAX * maxAbs(want), `${which} logits: worst ${worst} vs bound ${LOGITS_OF_MAX * maxAbs(want)}`);
  assert.ok(Math.abs(loss - expected) <= LOSS_REL * expected, `${which} loss ${loss} vs reference ${expected}`);
}

for (const backend of testBackends().filter((b) => b.name !== 'cuda')) {
  for (const name of MODELS) {
    describe(`${name} on ${backend.name}, bf16 weights, --compute_dtype bf16`, () => {
      test('base and LoRA logits and losses', async (t) => {
        if (!needShared(t, 'fixtures', 'models', name)) return;
        const be = backend.make();
        if (be.name === 'cpu' && !(be as unknown as { addon: { info(): { bf16Dot: boolean } } }).addon.info().bf16Dot) return t.skip('this CPU has no AVX512_BF16');
        const g = readGolden(name);
        const m = await loadModel(be, fixtureDir(name), { dtype: 'bf16' });
        applyComputeDtype(be, 'bf16');
        try {
          const lora = { adapter: loadLoraAdapter(be, m.config, `${fixtureDir(name)}/adapter`), dropout: 0, seed: 0 };
          await check(m, g, null, 'base');
          await check(m, g, lora, 'lora');
        } finally {
          applyComputeDtype(be, 'f32');
        }
      });
    });
  }
}
