// Full fine-tuning gradients. For every adapted projection, PEFT's LoRA gradients (the reference) fix the
// base weight's gradient through dB = s dW A^T and dA = s B^T dW; then every parameter tensor (embedding,
// norms, projection weights and biases, each layer) is checked at 4 elements by central differences.

// Differences: the loss is taken in float64 from the float32 logits; D(h) = (L(x+h) - L(x-h)) / step on the
// stored float32 steps, D = D(h) + (D(h) - D(2h)) / 3 at h = 0.02 (Richardson: O(h^4) truncation, at most
// 1.5e-5 = 4e-5 relative, on the embedding, whose rows RMSNorm sees at norm 0.4). Noise: the float32 forward
// moves the loss by ~1e-7, up to 5e-6 in D (measured: 2e-6 on js, which sums in float64; 5e-6 on cpu).
// Bound: |D - g| <= 1e-5 + 1e-4 |g|, for gradients of 1e-6 to 0.4; a gradient 0.3% off fails it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROJECTIONS } from '../../src/arch/projections.ts';
import { Rng } from '../../src/engine/random.ts';
import type { Tensor } from '../../src/engine/tensor.ts';
import { peftParamName } from '../../src/formats/weight-names.ts';
import { shiftTargets } from '../../src/model/batch.ts';
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
  const T = g.batch.T, V = m.config.vocabSize, C = m.config.hiddenSize;
  const row0 = { B: 1, T, inputIds: g.batch.inputIds.slice(0, T), attentionMask: null, labels: g.batch.labels!.slice(0, T) };
  const targets = shiftTargets(row0);
  for (const p of params) be.fill(p.grad, 0);
  const row0Tokens = (await scoreBatch(m, row0, lora)).tokens;
  await forwardBackward(m, row0, lora, 1 / row0Tokens);
  /** Mean cross-entropy of row 0 in float64 from the logits (V wide, one row per position). */
  const lossAt = async () => {
    let sum = 0;
    await scoreBatch(m, row0, lora, (first, rows, logits) => {
      for (let r = 0; r < rows; r++) {
        const target = targets[first + r]!;
        if (target < 0) continue;
        const z = logits.subarray(r * V, r * V + V);
        let max = -Infinity, exps = 0;
        for (const v of z) max = Math.max(max, v);
        for (const v of z) exps += Math.exp(v - max);
        sum += max + Math.log(exps) - z[target]!;
      }
    });
    return sum / row0Tokens;
  };
  const H = 0.02, ATOL = 1e-5, RTOL = 1e-4;
  const probe = async (name: string, param: Tensor, index: number, analytic: number) => {
    const data = (await be.download(param)) as Float32Array;
    const orig = data[index]!;
    const difference = async (h: number) => {
      data[index] = orig + h;
      const hi = data[index]!;
      be.upload(param, data);
      const up = await lossAt();
      data[index] = orig - h;
      const lo = data[index]!;
      be.upload(param, data);
      const down = await lossAt();
      data[index] = orig;
      be.upload(param, data);
      return (up - down) / (hi - lo);
    };
    const d1 = await difference(H), d2 = await difference(2 * H);
    const numeric = d1 + (d1 - d2) / 3;
    assert.ok(Math.abs(numeric - analytic) <= ATOL + RTOL * Math.abs(analytic), `${name}[${index}]: numeric ${numeric}, analytic ${analytic}`);
  };
  // Per tensor: its two largest gradients (where a relative error shows above the noise) and two random
  // elements; of the tied embedding's random two, one in a row that row 0 reads as input (and as head).
  const rng = new Rng(7);
  for (const { name, param } of params) {
    const analytic = (await be.download(grad.get(name)!)) as Float32Array;
    const largest = [...analytic.keys()].sort((i, j) => Math.abs(analytic[j]!) - Math.abs(analytic[i]!)).slice(0, 2);
    const inputRow = name === 'model.embed_tokens.weight' ? row0.inputIds[rng.int(T)]! * C + rng.int(C) : rng.int(param.size);
    for (const index of [...largest, inputRow, rng.int(param.size)]) await probe(name, param, index, analytic[index]!);
  }
});
