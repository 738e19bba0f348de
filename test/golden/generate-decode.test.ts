// The KV-cache decode path against PyTorch's logits (golden.safetensors base.logits / lora.logits): each row
// of the 2x12 batch (row 1 left-padded there) is one sequence of its real tokens; both rows fed at once, and
// then one token at a time, must give torch's logits at every real position. Positions start at 0 at each
// row's first real token in decode and are 0..T-1 in the golden; RoPE is relative, so they agree.
// Also a bf16 base on cpu, whose decoder stores its cache and the projections' inputs in bf16 (and multiplies its bf16
// weights in vdpbf16ps where the CPU has it), against the same float32 reference: bf16 weights and activations each carry up to
// 2^-9 relative rounding, compounding over the layers; measured worst over the three models 1.2e-2 of the largest
// reference logit (the measure of compute-bf16.test.ts), asserted at 3e-2. The same with the weights packed as
// generate and serve hold them (model/pack.ts), on CPUs with AVX512_BF16.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { argmax } from '../../src/engine/argmax.ts';
import { toFloat32 } from '../../src/formats/host-tensor.ts';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { createDecoder, decodeBatch, freeDecoder } from '../../src/model/decode.ts';
import type { KvSeq } from '../../src/model/kv-cache.ts';
import type { Model } from '../../src/model/llama.ts';
import { loadModel } from '../../src/model/load.ts';
import { loadLoraAdapter } from '../../src/model/lora-io.ts';
import { packForInference } from '../../src/model/pack.ts';
import { testBackends } from '../helpers/backends.ts';
import { needShared, sharedPath } from '../helpers/shared.ts';

const TOLERANCE = 1e-5; // max |ours - torch| relative to max(1, |torch|)
const BF16_OF_MAX = 3e-2; // bf16 base: max |ours - torch| relative to the largest |torch| logit

type Compare = (ours: Float32Array, want: Float32Array, what: string) => void;

const closeTo: Compare = (ours, want, what) => {
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(ours[i]! - want[i]!) / Math.max(1, Math.abs(want[i]!)));
  assert.ok(worst <= TOLERANCE, `${what}: logits differ by ${worst}`);
};

const bf16Close: Compare = (ours, want, what) => {
  let worst = 0, max = 0;
  for (let i = 0; i < want.length; i++) {
    worst = Math.max(worst, Math.abs(ours[i]! - want[i]!));
    max = Math.max(max, Math.abs(want[i]!));
  }
  assert.ok(worst <= BF16_OF_MAX * max, `${what}: logits differ by ${worst / max} of the largest`);
};

/** Prefill both rows at once, then token by token; every returned row of logits checked against torch's. */
async function checkDecode(model: Model, dir: string, compare: Compare): Promise<void> {
  const golden = readSafetensors(join(dir, 'golden.safetensors'));
  const ids = Int32Array.from(toFloat32(golden.get('input_ids')!), Number);
  const [B, T] = golden.get('input_ids')!.shape as [number, number];
  const maskT = golden.get('attention_mask');
  const mask = maskT ? Int32Array.from(toFloat32(maskT), Number) : new Int32Array(B * T).fill(1);
  const V = model.config.vocabSize;
  for (const [key, lora] of [['base.logits', null], ['lora.logits', { adapter: loadLoraAdapter(model.be, model.config, join(dir, 'adapter')), dropout: 0, seed: 0 }]] as const) {
    const want = toFloat32(golden.get(key)!);
    const at = (b: number, p: number) => want.subarray((b * T + p) * V, (b * T + p + 1) * V);

    const real = (b: number) => Array.from({ length: T }, (_, p) => p).filter((p) => mask[b * T + p]);
    const rows = Array.from({ length: B }, (_, b) => real(b));
    const seqs = (): KvSeq[] => rows.map(() => ({ blocks: [], length: 0 }));

    const whole = createDecoder(model, 64);
    const wholeSeqs = seqs();
    const last = (await decodeBatch(whole, rows.map((ps, b) => ({ seq: wholeSeqs[b]!, ids: ps.map((p) => ids[b * T + p]!), lora, logits: true })))).logits;
    for (let b = 0; b < B; b++) compare(last.subarray(b * V, (b + 1) * V), at(b, T - 1), `${key} prefill row ${b}`);
    freeDecoder(whole);

    const stepwise = createDecoder(model, 64);
    const stepSeqs = seqs();
    for (let p = 0; p < T; p++) {
      const fed = rows.map((ps, b) => ({ b, p })).filter(({ b }) => mask[b * T + p]);
      const out = await decodeBatch(stepwise, fed.map(({ b }) => ({ seq: stepSeqs[b]!, ids: [ids[b * T + p]!], lora, logits: true })));
      fed.forEach(({ b }, j) => {
        const row = out.logits.subarray(j * V, (j + 1) * V);
        compare(row, at(b, p), `${key} row ${b} position ${p}`);
        assert.equal(out.argmax[j], argmax(row), `${key} row ${b} position ${p}: the backend's argmax`);
      });
    }
    freeDecoder(stepwise);
  }
}

const backends = testBackends();

for (const backend of backends) for (const name of ['llama-mha', 'llama-gqa', 'llama3-rope']) {
  test(`${name} on ${backend.name}: decode logits match torch, batched prefill and token by token, base and LoRA`, async (t) => {
    if (!needShared(t, 'fixtures', 'models', name, 'golden.safetensors')) return;
    const dir = sharedPath('fixtures', 'models', name);
    await checkDecode(await loadModel(backend.make(), dir), dir, closeTo);
  });
}

for (const backend of backends.filter((b) => b.name === 'cpu')) for (const name of ['llama-mha', 'llama-gqa', 'llama3-rope']) {
  test(`${name} as a bf16 base on cpu: decode with bf16 projection inputs stays near torch's logits, base and LoRA`, async (t) => {
    if (!needShared(t, 'fixtures', 'models', name, 'golden.safetensors')) return;
    const dir = sharedPath('fixtures', 'models', name);
    const model = await loadModel(backend.make(), dir, { dtype: 'bf16' });
    const probe = createDecoder(model, 1);
    assert.equal(probe.dtype, 'bf16', 'a bf16 base decodes with bf16 projection inputs on cpu');
    freeDecoder(probe);
    await checkDecode(model, dir, bf16Close);
  });

  test(`${name} as a packed bf16 base on cpu: decode stays near torch's logits, base and LoRA`, async (t) => {
    if (!needShared(t, 'fixtures', 'models', name, 'golden.safetensors')) return;
    const dir = sharedPath('fixtures', 'models', name);
    const model = await loadModel(backend.make(), dir, { dtype: 'bf16' });
    const packed = packForInference(model);
    if (packed === 0) return void t.skip('this CPU has no AVX512_BF16: nothing is packed');
    assert.equal(packed, 7 * model.config.numLayers + 1, 'every decoder linear and the head');
    assert.equal(model.weights.lmHead.dtype, 'bf16-packed');
    await checkDecode(model, dir, bf16Close);
  });
}
