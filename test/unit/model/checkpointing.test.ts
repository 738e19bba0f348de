// Gradient checkpointing changes memory, not numbers: the same loss and every gradient bit for bit as the run
// that saves each layer's activations, for LoRA (with dropout, every projection) and for full fine-tuning, on
// every backend here. Also the saved set itself: what checkpointing keeps per token. Not speed (bench/).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLlamaConfig } from '../../../src/arch/llama-config.ts';
import { activationPlan, savedBytesPerToken } from '../../../src/model/activations.ts';
import { forwardBackward, reserveActivations } from '../../../src/model/compute.ts';
import { enableFullFinetune } from '../../../src/model/full-finetune.ts';
import { loadModel } from '../../../src/model/load.ts';
import { loadLoraAdapter } from '../../../src/model/lora-io.ts';
import { loraParameters } from '../../../src/model/lora.ts';
import { fixtureDir, readGolden } from '../../helpers/golden.ts';
import { testBackends } from '../../helpers/backends.ts';
import { needShared } from '../../helpers/shared.ts';

async function run(backend: ReturnType<typeof testBackends>[number], full: boolean, checkpointing: boolean) {
  const be = backend.make();
  const g = readGolden('llama-gqa');
  const m = await loadModel(be, fixtureDir('llama-gqa'));
  const adapter = loadLoraAdapter(be, m.config, `${fixtureDir('llama-gqa')}/adapter`);
  const lora = { adapter, dropout: 0.1, seed: 7 };
  const params = full ? enableFullFinetune(m) : loraParameters(adapter);
  reserveActivations(m, g.batch.B, g.batch.T, lora, { checkpointing });
  const r = await forwardBackward(m, g.batch, lora, 1 / 17);
  const grads = await Promise.all(params.map(async (p) => [p.name, await be.download(p.grad)] as const));
  return { loss: r.lossSum, grads };
}

for (const backend of testBackends()) {
  for (const full of [false, true]) {
    test(`gradient checkpointing gives the same loss and gradients bit for bit (${full ? 'full fine-tuning' : 'LoRA'}) on ${backend.name}`, async (t) => {
      if (!needShared(t, 'fixtures', 'models', 'llama-gqa')) return;
      const saved = await run(backend, full, false);
      const recomputed = await run(backend, full, true);
      assert.equal(recomputed.loss, saved.loss);
      assert.equal(recomputed.grads.length, saved.grads.length);
      for (const [i, [name, grad]] of saved.grads.entries()) {
        assert.ok(grad.some((v) => v !== 0), `${name} has a gradient`);
        assert.deepEqual(recomputed.grads[i]![1], grad, name);
      }
    });
  }
}

test('the saved set per token: LLaMA-7B with LoRA q,v r8, with and without checkpointing', () => {
  const cfg = parseLlamaConfig({
    model_type: 'llama', hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32,
    num_key_value_heads: 32, vocab_size: 32000, rms_norm_eps: 1e-6, max_position_embeddings: 2048,
  }, '7b/config.json');
  const s = { withGrad: true, loraTargets: ['q_proj', 'v_proj'] as const, loraR: 8, checkpointing: false };
  // per layer: xIn, xMid (C); q, k, v, att (C each here); gate, up (F); rstd1, rstd2; lse (NH); t of q and v (r each)
  const perLayer = 4 * (2 * 4096 + 4 * 4096 + 2 * 11008 + 2 + 32 + 2 * 8);
  assert.equal(savedBytesPerToken(cfg, s), 32 * perLayer);
  assert.equal(savedBytesPerToken(cfg, { ...s, checkpointing: true }), 32 * 4 * 4096);
  const names = activationPlan(cfg, 2, 16, s).map((b) => b.name);
  for (const gone of ['xn1', 'xn2', 'h']) assert.ok(!names.some((n) => n.endsWith(`.${gone}`)), `${gone} is recomputed, not saved`);
  const eval1 = activationPlan(cfg, 2, 16, { ...s, withGrad: false }).map((b) => b.name);
  assert.ok(eval1.every((n) => names.includes(n)), 'a forward-only pass uses a subset of the training buffers');
});
