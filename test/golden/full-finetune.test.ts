// Full fine-tuning gradients. For every adapted projection, PEFT's LoRA gradients (the reference) fix the
// base weight's gradient through dB = s dW A^T and dA = s B^T dW; norms, biases and embeddings are checked
// by central differences of the loss (h = 2e-2; per-token losses are stored in float32, so the
// differences carry ~1e-6 of noise: tolerance 5e-3 relative + 2e-5 absolute).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Tensor } from '../../src/engine/tensor.ts';
import { peftParamName, PROJECTIONS } from '../../src/formats/weight-names.ts';
import { forwardBackward, scoreBatch } from '../../src/model/compute.ts';
import { enableFullFinetune } from '../../src/model/full-finetune.ts';
import { loadModel } from '../../src/model/load.ts';
import { loadLoraAdapter } from '../../src/model/lora-io.ts';
import { assertClose, fixtureDir, goldenFloat, maxAbs, readGolden } from '../helpers/golden.ts';
import { testBackends } from '../helpers/backends.ts';
import { needShared } from '../helpers/shared.ts';

for (const backend of testBackends()) test(`full fine-tuning gradients agree with PEFT (llama-gqa: GQA, biases, tied embeddings) on ${backend.name}`, async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-gqa')) return;
  const be = backend.make();
  const g = readGolden('llama-gqa');
  const m = await loadModel(be, fixtureDir('llama-gqa'));
  const adapter = loadLoraAdapter(be, m.config, `${fixtureDir('llama-gqa')}/adapter`);
  const lora = { adapter, dropout: 0, seed: 0 };
  const params = enableFullFinetune(m);
  assert.equal(params.reduce((n, p) => n + p.param.size, 0), g.json.all_params - g.json.trainable_params);
  const { tokens } = await scoreBatch(m, g.batch, lora);
  await forwardBackward(m, g.batch, lora, 1 / tokens);
  const grad = new Map(params.map((p) => [p.name, p.grad]));

  const s = adapter.scaling;
  for (const [l, layer] of adapter.layers.entries()) {
    for (const p of PROJECTIONS) {
      const pair = layer.get(p)!;
      const { inFeatures: I, outFeatures: O } = pair;
      const r = adapter.settings.r;
      const dW = (await be.download(m.weights.layers[l]!.proj[p].dWeight!)) as Float32Array;
      const A = (await be.download(pair.A)) as Float32Array, B = (await be.download(pair.B)) as Float32Array;
      const dB = new Float64Array(O * r), dA = new Float64Array(r * I);
      for (let o = 0; o < O; o++) for (let k = 0; k < r; k++) for (let i = 0; i < I; i++) {
        dB[o * r + k]! += s * dW[o * I + i]! * A[k * I + i]!;
        dA[k * I + i]! += s * B[o * r + k]! * dW[o * I + i]!;
      }
      for (const [which, mine] of [['B', dB], ['A', dA]] as const) {
        const ref = goldenFloat(g, `grad.${peftParamName(l, p, which)}`);
        assertClose(mine, ref, 0, 1e-5 * maxAbs(ref), `layer ${l} ${p} via lora_${which}`);
      }
    }
  }

  // Central differences on row 0 alone: a left-padded row's uniform attention has HF's gradient through
  // its swamped scores, which no difference of the forward can see.
  const T = g.batch.T;
  const row0 = { B: 1, T, inputIds: g.batch.inputIds.slice(0, T), attentionMask: null, labels: g.batch.labels!.slice(0, T) };
  for (const p of params) be.fill(p.grad, 0);
  const row0Tokens = (await scoreBatch(m, row0, lora)).tokens;
  await forwardBackward(m, row0, lora, 1 / row0Tokens);
  const lossAt = async () => {
    const r = await scoreBatch(m, row0, lora);
    return r.lossSum / r.tokens;
  };
  const probe = async (name: string, param: Tensor, index: number) => {
    const data = (await be.download(param)) as Float32Array;
    const h = 2e-2, orig = data[index]!;
    const set = (v: number) => {
      data[index] = v;
      be.upload(param, data);
    };
    set(orig + h);
    const up = await lossAt();
    set(orig - h);
    const down = await lossAt();
    set(orig);
    const numeric = (up - down) / (2 * h);
    const analytic = ((await be.download(grad.get(name)!)) as Float32Array)[index]!;
    assert.ok(Math.abs(numeric - analytic) <= 5e-3 * Math.abs(numeric) + 2e-5, `${name}[${index}]: numeric ${numeric}, analytic ${analytic}`);
  };
  const byName = new Map(params.map((p) => [p.name, p.param]));
  const token = row0.inputIds[5]!;
  for (const [name, index] of [
    ['model.embed_tokens.weight', token * m.config.hiddenSize + 3], // used as input and as the tied head
    ['model.embed_tokens.weight', 7 * m.config.hiddenSize + 1], // head only
    ['model.norm.weight', 10],
    ['model.layers.0.input_layernorm.weight', 4],
    ['model.layers.2.post_attention_layernorm.weight', 33],
    ['model.layers.1.self_attn.k_proj.bias', 5],
    ['model.layers.1.self_attn.o_proj.bias', 60],
  ] as const) {
    await probe(name, byName.get(name)!, index);
  }
});
