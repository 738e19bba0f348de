// The cuda backend in its bf16 precision against PyTorch + transformers + PEFT (../shared/fixtures/models),
// with the base weights loaded as bf16: losses, logits and every LoRA gradient. The float32 golden suite
// (test/golden/llama-engine.test.ts) runs on cuda in its f32 precision with the tight tolerances.
// Loose tolerances (bf16 weights and bf16-rounded matmul inputs, 8 significant bits, against a float32
// reference): losses 5e-3 relative; logits 5e-2 of the largest reference logit; each LoRA gradient 1e-1
// of its largest reference magnitude. Rounding the weights alone (js, exact float32 math) costs up to
// 3e-5, 8e-3 and 1.7e-2 of those. Skips without a GPU (CI=true skips too; see test/helpers/cuda.ts).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { forwardBackward, scoreBatch } from '../../src/model/compute.ts';
import { loadModel } from '../../src/model/load.ts';
import { loadLoraAdapter } from '../../src/model/lora-io.ts';
import { loraParameters, zeroLoraGrads } from '../../src/model/lora.ts';
import { peftParamName } from '../../src/formats/weight-names.ts';
import { fixtureDir, goldenFloat, maxAbs, readGolden } from '../helpers/golden.ts';
import { needCuda } from '../helpers/cuda.ts';
import { needShared } from '../helpers/shared.ts';

const MODELS = ['llama-mha', 'llama-gqa', 'llama3-rope'];

function within(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string, skip?: (i: number) => boolean): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const atol = tol * maxAbs(expected);
  for (let i = 0; i < expected.length; i++) {
    if (skip?.(i)) continue;
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= atol, `${what}[${i}]: ${actual[i]} vs reference ${expected[i]} (tolerance ${atol})`);
  }
}

function lossNear(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= 5e-3 * Math.abs(expected), `${what}: ${actual} vs reference ${expected}`);
}

for (const name of MODELS) {
  describe(`${name} on cuda bf16 (loose)`, () => {
    test('base and LoRA logits and losses, every LoRA gradient', async (t) => {
      const be = needCuda(t, 'bf16');
      if (!be || !needShared(t, 'fixtures', 'models', name)) return;
      const g = readGolden(name);
      const m = await loadModel(be, fixtureDir(name), { dtype: 'bf16' });
      const V = m.config.vocabSize;
      const mask = g.batch.attentionMask;
      const padded = (i: number) => mask !== null && mask[Math.floor(i / V)] === 0;
      for (const [label, adapter] of [['base', null], ['lora', loadLoraAdapter(be, m.config, `${fixtureDir(name)}/adapter`)]] as const) {
        const logits = new Float32Array(g.batch.B * g.batch.T * V);
        const lora = adapter ? { adapter, dropout: 0, seed: 0 } : null;
        const r = await scoreBatch(m, g.batch, lora, (row0, _rows, chunk) => logits.set(chunk, row0 * V));
        within(logits, goldenFloat(g, `${label}.logits`), 5e-2, `${label} logits`, padded);
        lossNear(r.lossSum / r.tokens, label === 'base' ? g.json.base_loss : g.json.lora_loss, `${label} loss`);
        if (!adapter) continue;
        zeroLoraGrads(be, adapter);
        await forwardBackward(m, g.batch, lora, 1 / r.tokens);
        for (const p of loraParameters(adapter)) {
          const [layer, proj, matrix] = /layers\.(\d+)\.\w+\.(\w+)\.lora_([AB])/.exec(p.name)!.slice(1);
          const key = `grad.${peftParamName(Number(layer), proj as never, matrix as 'A' | 'B')}`;
          within((await be.download(p.grad)) as Float32Array, goldenFloat(g, key), 1e-1, key);
        }
      }
    });
  });
}
