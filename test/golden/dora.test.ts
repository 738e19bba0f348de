// DoRA against PEFT's math in float64 (../shared/fixtures/dora/llama-mha, see its README): the adapter's logits
// and loss, every lora_A gradient, the initial magnitude, the merged weights and the merged logits, on every
// backend here. The fixture holds no lora_B or magnitude gradients (its README promises them): the magnitude's
// are checked against central differences of the loss here (m does not move the norm), lora_B's in
// test/unit/model/dora-linear.test.ts against central differences with the norm held constant.
// Tolerances (a float64 reference, our float32 storage): logits 2e-5 absolute + 2e-5 relative; loss 1e-5
// relative; gradients 1e-5 of the tensor's largest magnitude; magnitudes and merged weights 1e-6 relative + 1e-6;
// central differences 2e-3 of the tensor's largest gradient (float32 loss, step 1e-2).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { Backend } from '../../src/engine/backend.ts';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import type { BnbConfig } from '../../src/formats/bnb-config.ts';
import { toFloat32 } from '../../src/formats/host-tensor.ts';
import { PROJECTION_INFO, type Projection } from '../../src/arch/projections.ts';
import { peftKey } from '../../src/formats/weight-names.ts';
import { forwardBackward, reserveActivations, scoreBatch } from '../../src/model/compute.ts';
import { createDecoder, decodeBatch, freeDecoder } from '../../src/model/decode.ts';
import { initDoraMagnitude } from '../../src/model/dora.ts';
import type { KvSeq } from '../../src/model/kv-cache.ts';
import { loadModel } from '../../src/model/load.ts';
import { packForInference } from '../../src/model/pack.ts';
import { adapterFromTensors, settingsFromConfig } from '../../src/model/lora-io.ts';
import { zeroLoraGrads, type LoraAdapter } from '../../src/model/lora.ts';
import type { Model } from '../../src/model/llama.ts';
import { mergeLora } from '../../src/model/merge.ts';
import { testBackends } from '../helpers/backends.ts';
import { assertClose, maxAbs, type Golden } from '../helpers/golden.ts';
import { doraFixtureAdapter, DORA_BASE as BASE, DORA_DIR as DIR } from '../helpers/dora-fixture.ts';
import { needShared } from '../helpers/shared.ts';


function readDoraGolden(): Golden {
  const tensors = readSafetensors(`${DIR}/golden.safetensors`);
  const ints = (name: string) => Int32Array.from(tensors.get(name)!.data as BigInt64Array, Number);
  const [B, T] = tensors.get('input_ids')!.shape as [number, number];
  return {
    json: JSON.parse(readFileSync(`${DIR}/golden.json`, 'utf8')),
    tensors,
    batch: { B, T, inputIds: ints('input_ids'), attentionMask: ints('attention_mask'), labels: ints('labels') },
  };
}

const golden = (g: Golden, key: string) => {
  const t = g.tensors.get(key);
  assert.ok(t, `golden tensor ${key} is missing`);
  return toFloat32(t);
};

async function logitsAndLoss(m: Model, g: Golden, adapter: LoraAdapter | null): Promise<{ logits: Float32Array; loss: number }> {
  const V = m.config.vocabSize;
  const logits = new Float32Array(g.batch.B * g.batch.T * V);
  const r = await scoreBatch(m, g.batch, adapter && { adapter, dropout: 0, seed: 0 }, (row0, _rows, chunk) => logits.set(chunk, row0 * V));
  return { logits, loss: r.lossSum / r.tokens };
}

const moduleName = (l: number, p: Projection) => `base_model.model.model.layers.${l}.${PROJECTION_INFO[p].block}.${p}`;

/** The fixture's adapter with the lora_B its golden values were computed with (test/helpers/dora-fixture.ts). */
async function setup(be: Backend, dtype?: 'bf16') {
  const m = await loadModel(be, BASE, { dtype });
  const peft = doraFixtureAdapter();
  const adapter = adapterFromTensors(be, m.config, settingsFromConfig(peft.config, m.config.numLayers), peft.tensors, DIR);
  return { m, adapter };
}

const backends = testBackends();

for (const backend of backends) {
  describe(`DoRA on llama-mha, ${backend.name}`, () => {
    for (const checkpointing of [false, true]) test(`logits, loss and every lora_A gradient${checkpointing ? ', gradient checkpointing' : ''}`, async (t) => {
      if (!needShared(t, 'fixtures', 'dora', 'llama-mha')) return;
      const g = readDoraGolden();
      const be = backend.make();
      const { m, adapter } = await setup(be);
      assert.equal(adapter.settings.useDora, true);
      reserveActivations(m, g.batch.B, g.batch.T, { adapter, dropout: 0, seed: 0 }, { checkpointing });
      const { logits, loss } = await logitsAndLoss(m, g, adapter);
      assertClose(logits, golden(g, 'dora.logits'), 2e-5, 2e-5, 'DoRA logits');
      assert.ok(Math.abs(loss - g.json.loss) <= 1e-5 * g.json.loss, `loss ${loss} vs reference ${g.json.loss}`);
      const tokens = (await scoreBatch(m, g.batch, null)).tokens;
      zeroLoraGrads(be, adapter);
      await forwardBackward(m, g.batch, { adapter, dropout: 0, seed: 0 }, 1 / tokens);
      let compared = 0;
      for (const [l, layer] of adapter.layers.entries()) {
        for (const [p, pair] of layer) {
          const key = `grad.${peftKey(l, p, 'A')}`;
          const expected = golden(g, key);
          assertClose((await be.download(pair.dA)) as Float32Array, expected, 0, 1e-5 * maxAbs(expected), key);
          compared++;
        }
      }
      assert.equal(compared, 14);
    });

    test('decoding with the adapter: a prefill then token by token, beside a row without it, gives the DoRA logits', async (t) => {
      if (!needShared(t, 'fixtures', 'dora', 'llama-mha')) return;
      const g = readDoraGolden();
      const be = backend.make();
      const { m, adapter } = await setup(be);
      const { B, T, inputIds } = g.batch;
      const V = m.config.vocabSize;
      const expected = golden(g, 'dora.logits');
      const d = createDecoder(m, 16);
      const lora = { adapter, dropout: 0, seed: 0 };
      const seqs: KvSeq[] = [{ blocks: [], length: 0 }, { blocks: [], length: 0 }, { blocks: [], length: 0 }];
      const prefill = 5;
      const rowIds = (b: number, t0: number, t1: number) => Array.from(inputIds.subarray(b * T + t0, b * T + t1));
      for (let t0 = 0; t0 < T; t0 = t0 === 0 ? prefill : t0 + 1) {
        const t1 = t0 === 0 ? prefill : t0 + 1;
        const { logits } = await decodeBatch(d, [
          { seq: seqs[0]!, ids: rowIds(0, t0, t1), lora, logits: true },
          { seq: seqs[2]!, ids: rowIds(1, t0, t1), lora: null, logits: false }, // a base row in the same step
          { seq: seqs[1]!, ids: rowIds(1, t0, t1), lora, logits: true },
        ]);
        for (let b = 0; b < B; b++) {
          const at = (b * T + t1 - 1) * V;
          assertClose(logits.subarray(b * V, (b + 1) * V), expected.subarray(at, at + V), 2e-5, 2e-5, `row ${b} logits at ${t1 - 1}`);
        }
      }
      freeDecoder(d);
    });

    test('initial magnitude, merged weights and merged logits', async (t) => {
      if (!needShared(t, 'fixtures', 'dora', 'llama-mha')) return;
      const g = readDoraGolden();
      const be = backend.make();
      const { m, adapter } = await setup(be);
      const saved = new Map<string, Float32Array>();
      for (const [l, layer] of adapter.layers.entries()) {
        for (const [p, pair] of layer) saved.set(`${l}.${p}`, (await be.download(pair.dora!.magnitude)) as Float32Array);
      }
      await initDoraMagnitude(m, adapter);
      for (const [l, layer] of adapter.layers.entries()) {
        for (const [p, pair] of layer) {
          const key = `init_magnitude.${moduleName(l, p)}`;
          assertClose((await be.download(pair.dora!.magnitude)) as Float32Array, golden(g, key), 1e-6, 1e-6, key);
          be.upload(pair.dora!.magnitude, saved.get(`${l}.${p}`)!); // back to the trained magnitude
        }
      }
      await mergeLora(m, adapter);
      for (const [l, layer] of m.weights.layers.entries()) {
        for (const [p, params] of Object.entries(layer.proj)) {
          const key = `merged.model.layers.${l}.${PROJECTION_INFO[p as Projection].block}.${p}.weight`;
          assertClose((await be.download(params.weight)) as Float32Array, golden(g, key), 1e-6, 1e-6, key);
        }
      }
      const merged = await logitsAndLoss(m, g, null);
      assertClose(merged.logits, golden(g, 'merged.logits'), 2e-5, 2e-5, 'merged logits');
    });
  });
}

test('DoRA magnitude gradients match central differences of the loss, js', async (t) => {
  if (!needShared(t, 'fixtures', 'dora', 'llama-mha')) return;
  const g = readDoraGolden();
  const be = testBackends()[0]!.make();
  const { m, adapter } = await setup(be);
  const tokens = (await scoreBatch(m, g.batch, null)).tokens;
  zeroLoraGrads(be, adapter);
  await forwardBackward(m, g.batch, { adapter, dropout: 0, seed: 0 }, 1 / tokens);
  const h = 1e-2;
  for (const [l, p] of [[0, 'q_proj'], [0, 'gate_proj'], [1, 'down_proj'], [1, 'v_proj']] as [number, Projection][]) {
    const dora = adapter.layers[l]!.get(p)!.dora!;
    const analytic = (await be.download(dora.dMagnitude)) as Float32Array;
    const values = (await be.download(dora.magnitude)) as Float32Array;
    const lossAt = async (i: number, delta: number) => {
      const v = values.slice();
      v[i]! += delta;
      be.upload(dora.magnitude, v);
      return (await logitsAndLoss(m, g, adapter)).loss;
    };
    const scale = maxAbs(analytic);
    for (const i of [0, 7, values.length - 1]) {
      const numeric = ((await lossAt(i, h)) - (await lossAt(i, -h))) / (2 * h);
      assert.ok(Math.abs(numeric - analytic[i]!) <= 2e-3 * scale, `magnitude ${l}.${p}[${i}]: analytic ${analytic[i]} vs central difference ${numeric} (largest ${scale})`);
    }
    be.upload(dora.magnitude, values);
  }
});

test('a 4-bit base: DoRA reads its dequantized rows (logits = the dequantized model\'s, js and cpu); an 8-bit base is refused', async (t) => {
  if (!needShared(t, 'fixtures', 'dora', 'llama-mha')) return;
  const g = readDoraGolden();
  const nf4: BnbConfig = { bits: 4, quantType: 'nf4', doubleQuant: true, computeDtype: 'bfloat16', skipModules: null };
  for (const backend of testBackends()) {
    const be = backend.make();
    const quantized = await loadModel(be, BASE, { quantize: nf4, dtype: 'f32' });
    const peft = doraFixtureAdapter();
    const settings = settingsFromConfig(peft.config, quantized.config.numLayers);
    const q = await logitsAndLoss(quantized, g, adapterFromTensors(be, quantized.config, settings, peft.tensors, DIR));
    // the same weights dequantized into an f32 model
    const dense = await loadModel(be, BASE, { dtype: 'f32' });
    for (const [l, layer] of quantized.weights.layers.entries()) {
      for (const [p, params] of Object.entries(layer.proj)) be.upload(dense.weights.layers[l]!.proj[p as Projection].weight, (await be.download(params.weight)) as Float32Array);
    }
    const d = await logitsAndLoss(dense, g, adapterFromTensors(be, dense.config, settings, peft.tensors, DIR));
    assertClose(q.logits, d.logits, 1e-5, 1e-5, `${backend.name}: nf4 base vs its dequantized weights`);
  }
  const be = testBackends()[0]!.make();
  const int8 = await loadModel(be, BASE, { quantize: { bits: 8, threshold: 6, skipModules: null }, dtype: 'f32' });
  const peft = doraFixtureAdapter();
  const adapter = adapterFromTensors(be, int8.config, settingsFromConfig(peft.config, int8.config.numLayers), peft.tensors, DIR);
  await assert.rejects(logitsAndLoss(int8, g, adapter), /an 8-bit \(LLM\.int8\) base does not give/);
});

// A bf16 base packed as generate and serve hold it (model/pack.ts): the norms read the packed weights through download
// and a float32 product. Against the same float64 logits, within generate-decode.test.ts's bf16 bound (3e-2 of the
// largest logit; measured 7.4e-3): the bf16 weights and activations, not the layout, set the error.
for (const backend of backends.filter((b) => b.name === 'cpu')) {
  test('DoRA decoding on a packed bf16 base stays near the DoRA logits', async (t) => {
    if (!needShared(t, 'fixtures', 'dora', 'llama-mha')) return;
    const g = readDoraGolden();
    const { m, adapter } = await setup(backend.make(), 'bf16');
    if (packForInference(m) === 0) return void t.skip('this CPU has no AVX512_BF16: nothing is packed');
    const { B, T, inputIds } = g.batch;
    const V = m.config.vocabSize;
    const expected = golden(g, 'dora.logits');
    const d = createDecoder(m, 16);
    const seqs: KvSeq[] = Array.from({ length: B }, () => ({ blocks: [], length: 0 }));
    const { logits } = await decodeBatch(d, seqs.map((seq, b) => ({ seq, ids: Array.from(inputIds.subarray(b * T, (b + 1) * T)), lora: { adapter, dropout: 0, seed: 0 }, logits: true })));
    for (let b = 0; b < B; b++) {
      const want = expected.subarray((b * T + T - 1) * V, (b * T + T) * V);
      assertClose(logits.subarray(b * V, (b + 1) * V), want, 0, 3e-2 * maxAbs(want), `row ${b} logits`);
    }
    freeDecoder(d);
  });
}
