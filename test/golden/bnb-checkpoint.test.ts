// Models saved quantized by transformers + bitsandbytes (../shared/fixtures/quant) through the engine, against
// the reference's logits where attention_mask is 1:
// - NF4 dequantized on load (js): the reference's float64 forward over the same dequantized (bf16) weights,
//   1e-5 absolute + 1e-5 relative, as the float golden models.
// - NF4 as stored (every backend): 1e-5 + 1e-5 against the reference (measured 1.8e-7 js, 6.6e-7 cpu; |x| <= 1.5),
//   the kernels rounding each dequantized value to its quant_state dtype (bf16) as bitsandbytes' dequantize_4bit
//   does; and against a dense forward over those dequantized weights (1e-5 + 1e-5).
// - int8 as stored (LLM.int8 with outlier columns, every backend): 1e-5 + 1e-5 (measured 1.2e-7 on js).
// - Quantized on load from llama-mha rounded to bf16: the fixtures' weights byte for byte, and their logits exactly.
// cuda has no quantized kernels: loading one there is refused, naming the cpu backend.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import type { BnbConfig } from '../../src/formats/bnb-config.ts';
import { UserError } from '../../src/errors.ts';
import { toFloat32, type HostTensor } from '../../src/formats/host-tensor.ts';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { dequantize, type Quantized4bit } from '../../src/engine/quantized.ts';
import { scoreBatch } from '../../src/model/compute.ts';
import { enableFullFinetune } from '../../src/model/full-finetune.ts';
import type { Model } from '../../src/model/llama.ts';
import { loadModel } from '../../src/model/load.ts';
import { openQuantizedBase } from '../../src/model/quantized-base.ts';
import { testBackends } from '../helpers/backends.ts';
import { assertClose, fixtureDir } from '../helpers/golden.ts';
import { needShared, sharedPath } from '../helpers/shared.ts';

const NF4 = sharedPath('fixtures', 'quant', 'llama-mha-bnb-nf4');
const INT8 = sharedPath('fixtures', 'quant', 'llama-mha-bnb-int8');
const NF4_DQ: BnbConfig = { bits: 4, quantType: 'nf4', doubleQuant: true, computeDtype: 'bfloat16', skipModules: null };
const LLM_INT8: BnbConfig = { bits: 8, threshold: 6, skipModules: null };

interface Golden {
  B: number;
  T: number;
  ids: Int32Array;
  mask: Int32Array;
  logits: Float32Array;
  tensors: Map<string, HostTensor>;
}

function readGolden(dir: string): Golden {
  const tensors = readSafetensors(`${dir}/golden.safetensors`);
  const ints = (name: string) => Int32Array.from(tensors.get(name)!.data as BigInt64Array, Number);
  const [B, T] = tensors.get('input_ids')!.shape as [number, number];
  return { B, T, ids: ints('input_ids'), mask: ints('attention_mask'), logits: toFloat32(tensors.get('logits')!), tensors };
}

async function logitsOf(m: Model, g: Golden): Promise<Float32Array> {
  const V = m.config.vocabSize;
  const out = new Float32Array(g.B * g.T * V);
  await scoreBatch(m, { B: g.B, T: g.T, inputIds: g.ids, attentionMask: g.mask, labels: null }, null, (row0, _rows, chunk) => out.set(chunk, row0 * V));
  return out;
}

const padded = (g: Golden, V: number) => (i: number) => g.mask[Math.floor(i / V)] === 0;

test('NF4 checkpoint, dequantized on load: logits match the reference', async (t) => {
  if (!needShared(t, 'fixtures', 'quant')) return;
  const g = readGolden(NF4);
  const m = await loadModel(new JsBackend(), NF4, { dequantize: true, dtype: 'f32' });
  assertClose(await logitsOf(m, g), g.logits, 1e-5, 1e-5, 'NF4 logits', padded(g, m.config.vocabSize));
});

for (const backend of testBackends()) {
  test(`${backend.name}: NF4 and int8 checkpoints computed as stored`, async (t) => {
    if (!needShared(t, 'fixtures', 'quant')) return;
    const be = backend.make();
    if (backend.name === 'cuda') {
      await assert.rejects(loadModel(be, NF4), (err: Error) => err instanceof UserError && /--backend cpu/.test(err.message));
      return;
    }
    const g = readGolden(NF4);
    const m = await loadModel(be, NF4);
    assert.equal(m.weights.layers[1]!.proj.down_proj.weight.dtype, 'nf4');
    assert.equal(m.weights.embed.dtype, 'bf16');
    assert.deepEqual({ source: m.quantization?.source, linears: m.quantization?.names.length }, { source: 'checkpoint', linears: 14 });
    const V = m.config.vocabSize;
    const quantized = await logitsOf(m, g);
    assertClose(quantized, g.logits, 1e-5, 1e-5, 'NF4 logits vs the reference', padded(g, V));

    const dense = await loadModel(be, NF4, { dequantize: true, dtype: 'f32' });
    const reader = await openQuantizedBase(NF4, null);
    try {
      for (const l of dense.weights.layers.keys()) {
        for (const [p, lin] of Object.entries(dense.weights.layers[l]!.proj)) {
          const block = p === 'gate_proj' || p === 'up_proj' || p === 'down_proj' ? 'mlp' : 'self_attn';
          be.upload(lin.weight, dequantize(reader.readWeight(`model.layers.${l}.${block}.${p}.weight`) as Quantized4bit));
        }
      }
    } finally {
      reader.close();
    }
    assertClose(quantized, await logitsOf(dense, g), 1e-5, 1e-5, 'NF4 logits vs a dense forward over the dequantized weights', padded(g, V));

    const g8 = readGolden(INT8);
    const m8 = await loadModel(be, INT8);
    assert.equal(m8.weights.layers[0]!.proj.q_proj.weight.dtype, 'int8');
    assertClose(await logitsOf(m8, g8), g8.logits, 1e-5, 1e-5, 'int8 logits (LLM.int8)', padded(g8, V));
  });
}

test('quantizing llama-mha on load gives the saved checkpoints: weights byte for byte, logits exactly', async (t) => {
  if (!needShared(t, 'fixtures', 'quant')) return;
  for (const [fixture, config] of [[NF4, NF4_DQ], [INT8, LLM_INT8]] as const) {
    const saved = await openQuantizedBase(fixture, null);
    // llama-mha is float32: loaded in bf16 (transformers' dtype=torch.bfloat16), it is what the fixtures were made from
    const onLoad = await openQuantizedBase(fixtureDir('llama-mha'), config, { dtype: 'BF16' });
    try {
      assert.deepEqual([...onLoad.quantization!.names].sort(), [...saved.quantization!.names].sort());
      for (const name of saved.quantization!.names) assert.deepEqual(onLoad.readWeight(name), saved.readWeight(name), name);
    } finally {
      saved.close();
      onLoad.close();
    }
    const g = readGolden(fixture);
    const expected = await logitsOf(await loadModel(new JsBackend(), fixture), g);
    const m = await loadModel(new JsBackend(), fixtureDir('llama-mha'), { quantize: config, dtype: 'bf16' });
    assert.deepEqual({ source: m.quantization!.source, bits: m.quantization!.config.bits }, { source: 'load', bits: config.bits });
    assertClose(await logitsOf(m, g), expected, 0, 0, `${config.bits}-bit on load vs the saved checkpoint`);
  }
});

test('a checkpoint stored quantized is used as it is: a requested quantization is reported, not applied', async (t) => {
  if (!needShared(t, 'fixtures', 'quant')) return;
  const m = await loadModel(new JsBackend(), NF4, { quantize: LLM_INT8 });
  assert.equal(m.weights.layers[0]!.proj.q_proj.weight.dtype, 'nf4');
  assert.deepEqual(m.quantization!.ignored, LLM_INT8);
});

test('llm_int8_skip_modules leaves the named modules 16-bit; a name that matches nothing is refused', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha-bf16')) return;
  const dir = fixtureDir('llama-mha-bf16');
  const m = await loadModel(new JsBackend(), dir, { quantize: { ...NF4_DQ, skipModules: ['down_proj', 'model.layers.1.self_attn'] } });
  const dtypes = m.weights.layers.map((l) => Object.fromEntries(Object.entries(l.proj).map(([p, lin]) => [p, lin.weight.dtype])));
  assert.deepEqual(dtypes, [
    { q_proj: 'nf4', k_proj: 'nf4', v_proj: 'nf4', o_proj: 'nf4', gate_proj: 'nf4', up_proj: 'nf4', down_proj: 'bf16' },
    { q_proj: 'bf16', k_proj: 'bf16', v_proj: 'bf16', o_proj: 'bf16', gate_proj: 'nf4', up_proj: 'nf4', down_proj: 'bf16' },
  ]);
  assert.equal(m.quantization!.names.length, 8);
  await assert.rejects(loadModel(new JsBackend(), dir, { quantize: { ...NF4_DQ, skipModules: ['mlp.down'] } }),
    /^UserError: --llm_int8_skip_modules: "mlp\.down" names no module of .*llama-mha-bf16/);
});

test('full fine-tuning a quantized base is refused in one line', async (t) => {
  if (!needShared(t, 'fixtures', 'quant')) return;
  const m = await loadModel(new JsBackend(), NF4);
  assert.throws(() => enableFullFinetune(m), (err: Error) => err instanceof UserError && /^full fine-tuning .* nf4 linears .*--load_in_4bit/.test(err.message));
});
