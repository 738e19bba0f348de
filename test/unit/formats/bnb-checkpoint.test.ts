// Checkpoints saved already quantized by transformers + bitsandbytes (../shared/fixtures/quant/llama-mha-bnb-*):
// quantization_config, the 4-bit and 8-bit keys read into QuantizedWeight, dequantization bit-exact against
// bitsandbytes' own (NF4), int8 within half a step of the bf16 weights, and every refusal naming what and where.

import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { dequantize, type NestedAbsmax, type Quantized4bit, type QuantizedInt8 } from '../../../src/engine/quantized.ts';
import { UserError } from '../../../src/errors.ts';
import { quantize4bit } from '../../../src/formats/bnb-4bit.ts';
import { isQuantized, openBnbCheckpoint, readQuantizedLinears } from '../../../src/formats/bnb-checkpoint.ts';
import { parseQuantizationConfig } from '../../../src/formats/bnb-config.ts';
import { quantizeInt8Rows } from '../../../src/formats/bnb-int8.ts';
import { fromFloat32, toFloat32, type HostTensor } from '../../../src/formats/host-tensor.ts';
import { readSafetensors } from '../../../src/formats/safetensors.ts';
import { writeSafetensors } from '../../../src/formats/safetensors-write.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';
import { tempDir } from './tmp.ts';

const NF4 = sharedPath('fixtures', 'quant', 'llama-mha-bnb-nf4');
const INT8 = sharedPath('fixtures', 'quant', 'llama-mha-bnb-int8');
const Q = 'model.layers.0.self_attn.q_proj.weight';

/** llama-mha's weight as the fixtures were quantized from it: rounded to bf16. */
function bf16Weight(base: Map<string, HostTensor>, name: string): Float32Array {
  const h = base.get(name)!;
  return toFloat32(fromFloat32(toFloat32(h), h.shape, 'BF16'));
}

function sameBytes(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) assert.fail(`${what}: element ${i} is ${a[i]}, expected ${b[i]}`);
}

test('NF4 checkpoint: config, logical names, and every weight dequantized bit-exact against bitsandbytes', async (t) => {
  if (!needShared(t, 'fixtures', 'quant')) return;
  const golden = readSafetensors(join(NF4, 'golden.safetensors'));
  const reader = await openBnbCheckpoint(NF4);
  try {
    assert.deepEqual(reader.quantization, { bits: 4, quantType: 'nf4', doubleQuant: true, computeDtype: 'bfloat16', skipModules: null });
    assert.ok(Object.isFrozen(reader.quantization));
    assert.equal(reader.names().length, 2 * 9 + 3, 'each linear once, side tensors hidden');
    assert.ok(!reader.names().some((n) => /absmax|quant_map|quant_state/.test(n)));
    assert.equal(reader.quantizedNames().length, 14);
    for (const name of reader.quantizedNames()) {
      const expected = golden.get(`dequantized.${name}`)!;
      assert.deepEqual(reader.info(name), { dtype: 'BF16', shape: expected.shape });
      const h = reader.read(name);
      assert.equal(h.dtype, 'BF16', 'bitsandbytes dequantizes to the quant_state dtype');
      sameBytes(new Uint32Array(toFloat32(h).buffer), new Uint32Array((expected.data as Float32Array).slice().buffer), name);
    }
    const q = reader.readWeight(Q) as Quantized4bit;
    assert.equal(q.type, 'nf4');
    assert.equal(q.dtype, 'bf16', 'the quant_state dtype');
    const dequantized = golden.get(`dequantized.${Q}`)!.data as Float32Array;
    sameBytes(new Uint32Array(dequantize(q).buffer), new Uint32Array(dequantized.slice().buffer), `${Q} dequantize (rounded to bf16)`);
    assert.equal(q.blocksize, 64);
    assert.deepEqual(q.shape, [64, 64]);
    const nested = q.absmax as NestedAbsmax;
    assert.equal(nested.nestedBlocksize, 256);
    assert.equal(nested.offset, Math.fround(0.13010406494140625));
  } finally {
    reader.close();
  }
});

test('quantizing llama-mha (bf16) reproduces the NF4 and int8 checkpoints byte for byte', async (t) => {
  if (!needShared(t, 'fixtures', 'quant') || !needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const base = readSafetensors(sharedPath('fixtures', 'models', 'llama-mha', 'model.safetensors'));
  const nf4 = await readQuantizedLinears(NF4);
  const int8 = await readQuantizedLinears(INT8);
  assert.equal(nf4.size, 14);
  for (const [name, stored] of nf4) {
    const shape = base.get(name)!.shape as [number, number];
    const mine = quantize4bit(bf16Weight(base, name), shape, 'nf4', 64, true);
    const theirs = stored as Quantized4bit;
    sameBytes(mine.packed, theirs.packed, `${name} packed`);
    const [a, b] = [mine.absmax as NestedAbsmax, theirs.absmax as NestedAbsmax];
    sameBytes(a.codes, b.codes, `${name} absmax codes`);
    sameBytes(a.nestedAbsmax, b.nestedAbsmax, `${name} nested_absmax`);
    sameBytes(a.nestedMap, b.nestedMap, `${name} nested_quant_map`);
    assert.equal(a.offset, b.offset, `${name} nested_offset`);
    const q8 = quantizeInt8Rows(bf16Weight(base, name), shape);
    sameBytes(q8.weight, (int8.get(name) as QuantizedInt8).weight, `${name} int8`);
    sameBytes(q8.scb, (int8.get(name) as QuantizedInt8).scb, `${name} SCB`);
  }
});

test('int8 checkpoint: weight, SCB and threshold read; dequantized within half a step of the bf16 weights', async (t) => {
  if (!needShared(t, 'fixtures', 'quant') || !needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const base = readSafetensors(sharedPath('fixtures', 'models', 'llama-mha', 'model.safetensors'));
  const reader = await openBnbCheckpoint(INT8);
  try {
    assert.deepEqual(reader.quantization, { bits: 8, threshold: 6, skipModules: null });
    assert.equal(reader.names().length, 21);
    assert.ok(!reader.names().some((n) => /SCB|weight_format/.test(n)));
    assert.equal(reader.quantizedNames().length, 14);
    for (const name of reader.quantizedNames()) {
      const q = reader.readWeight(name) as QuantizedInt8;
      assert.equal(q.type, 'int8');
      assert.equal(q.threshold, 6);
      const w = bf16Weight(base, name);
      const C = q.shape[1];
      const d = reader.read(name);
      assert.equal(d.dtype, 'F32');
      const values = d.data as Float32Array;
      for (let i = 0; i < values.length; i++) {
        const halfStep = q.scb[Math.floor(i / C)]! / 254;
        assert.ok(Math.abs(values[i]! - w[i]!) <= halfStep * 1.001 + Math.abs(w[i]!) * 2 ** -11, `${name}[${i}]: ${values[i]} vs bf16 ${w[i]}`);
      }
    }
  } finally {
    reader.close();
  }
});

test('an unquantized checkpoint reads as before: every linear a HostTensor', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const linears = await readQuantizedLinears(sharedPath('fixtures', 'models', 'llama-mha'));
  assert.equal(linears.size, 14);
  assert.ok([...linears.values()].every((w) => !isQuantized(w)));
});

test('quantization_config: defaults, and every other method or storage refused in one line', () => {
  const parse = (q: unknown) => parseQuantizationConfig({ model_type: 'llama', quantization_config: q }, '/m/config.json');
  assert.equal(parseQuantizationConfig({ model_type: 'llama' }, '/m/config.json'), null);
  assert.deepEqual(parse({ quant_method: 'bitsandbytes', load_in_4bit: true }), { bits: 4, quantType: 'fp4', doubleQuant: false, computeDtype: 'float32', skipModules: null });
  assert.deepEqual(parse({ load_in_8bit: true, llm_int8_threshold: 0, llm_int8_skip_modules: ['lm_head'] }), { bits: 8, threshold: 0, skipModules: ['lm_head'] });
  assert.equal((parse({ quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_compute_dtype: 'torch.float16' }) as { computeDtype: string }).computeDtype, 'float16');
  for (const method of ['gptq', 'awq', 'hqq', 'fp8', 'compressed-tensors', 'aqlm']) {
    assert.throws(() => parse({ quant_method: method, bits: 4 }), (err: Error) => {
      assert.ok(err instanceof UserError);
      assert.match(err.message, new RegExp(`^/m/config\\.json: quantization_config has quant_method "${method}", which is not supported \\(supported: bitsandbytes 4-bit \\(nf4/fp4, uint8 storage\\) and 8-bit \\(LLM\\.int8\\)\\)`));
      assert.ok(!err.message.includes('\n'));
      return true;
    });
  }
  const refused: [unknown, RegExp][] = [
    [{ quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_storage: 'bfloat16' }, /bnb_4bit_quant_storage "bfloat16" \(only uint8\), which is not supported/],
    [{ quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'int4' }, /bnb_4bit_quant_type "int4"/],
    [{ quant_method: 'bitsandbytes', load_in_4bit: true, load_in_8bit: true }, /load_in_4bit true and load_in_8bit true: exactly one/],
    [{ quant_method: 'bitsandbytes' }, /load_in_4bit false and load_in_8bit false: exactly one must be true: fix config\.json/],
    [{ quant_method: 'bitsandbytes', load_in_8bit: true, llm_int8_has_fp16_weight: true }, /llm_int8_has_fp16_weight true/],
    [{ quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_compute_dtype: 'int8' }, /bnb_4bit_compute_dtype "int8"/],
    [{ bits: 4 }, /quant_method null/],
  ];
  for (const [q, message] of refused) assert.throws(() => parse(q), message);
});

/** A copy of a fixture checkpoint with `edit` applied to its tensors and `config` to its config.json. */
async function edited(
  t: Parameters<typeof tempDir>[0], from: string, edit: (m: Map<string, HostTensor>) => void, config?: (c: any) => void,
): Promise<string> {
  const dir = tempDir(t);
  cpSync(from, dir, { recursive: true });
  const tensors = readSafetensors(join(from, 'model.safetensors'));
  edit(tensors);
  await writeSafetensors(join(dir, 'model.safetensors'), tensors);
  if (config) {
    const c = JSON.parse(readFileSync(join(from, 'config.json'), 'utf8'));
    config(c);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
  }
  return dir;
}

async function assertRefused(dir: string, message: RegExp): Promise<void> {
  await assert.rejects(openBnbCheckpoint(dir), (err: Error) => {
    assert.ok(err instanceof UserError, err.message);
    assert.match(err.message, message);
    assert.ok(err.message.includes(join(dir, 'model.safetensors')), `names the file: ${err.message}`);
    return true;
  });
}

test('quantized tensors whose sizes do not fit their shape are refused, naming the tensor and the file', async (t) => {
  if (!needShared(t, 'fixtures', 'quant')) return;
  const cut = (m: Map<string, HostTensor>, key: string, n: number) => {
    const h = m.get(key)!;
    m.set(key, { dtype: h.dtype, shape: [n], data: h.data.slice(0, n) });
  };
  await assertRefused(await edited(t, NF4, (m) => cut(m, Q, 2047)), new RegExp(`${Q} is U8 \\[2047\\], expected 2048 U8 \\(packed bytes for shape \\[64, 64\\]\\)`));
  await assertRefused(await edited(t, NF4, (m) => cut(m, `${Q}.absmax`, 63)), new RegExp(`${Q}\\.absmax is U8 \\[63\\], expected 64 U8 \\(blocks of 64 in \\[64, 64\\]\\)`));
  await assertRefused(await edited(t, NF4, (m) => cut(m, `${Q}.nested_quant_map`, 255)), /nested_quant_map is F32 \[255\], expected 256 F32/);
  await assertRefused(await edited(t, NF4, (m) => m.delete(`${Q}.nested_absmax`)), new RegExp(`${Q}\\.absmax is U8 \\[64\\], expected 64 F32`));
  await assertRefused(
    await edited(t, NF4, (m) => m.set(`${Q}.quant_map`, { dtype: 'F32', shape: [16], data: new Float32Array(16) })),
    new RegExp(`${Q} has a quant_map that is not bitsandbytes' nf4 table`),
  );
  await assertRefused(
    await edited(t, NF4, (m) => {
      const h = m.get(Q)!;
      m.set(Q, { dtype: 'BF16', shape: [1024, 1], data: new Uint16Array(h.data.buffer, h.data.byteOffset, 1024) });
    }),
    new RegExp(`${Q} is stored as BF16; 4-bit weights are read from uint8 storage only`),
  );
  const state = `${Q}.quant_state.bitsandbytes__nf4`;
  await assertRefused(
    await edited(t, NF4, (m) => m.set(state, { dtype: 'U8', shape: [3], data: Uint8Array.of(123, 34, 125) })),
    new RegExp(`${state.replaceAll('.', '\\.')} is not the UTF-8 JSON object bitsandbytes writes there`),
  );
  const k = 'model.layers.1.mlp.up_proj';
  await assertRefused(await edited(t, INT8, (m) => cut(m, `${k}.SCB`, 159)), new RegExp(`${k}\\.SCB is F32 \\[159\\], expected 160 F32 \\(rows of ${k}\\.weight \\[160, 64\\]\\)`));
  await assertRefused(
    await edited(t, INT8, (m) => m.set(`${k}.weight_format`, { dtype: 'U8', shape: [1], data: Uint8Array.of(1) })),
    new RegExp(`${k}\\.weight_format is 1; only 0 \\(row-major int8`),
  );
});

test('a checkpoint whose config.json names another quantization method is refused before its tensors are read', async (t) => {
  if (!needShared(t, 'fixtures', 'quant')) return;
  const dir = await edited(t, NF4, () => {}, (c) => { c.quantization_config = { quant_method: 'awq', bits: 4, group_size: 128 }; });
  await assert.rejects(openBnbCheckpoint(dir), new RegExp(`^UserError: ${join(dir, 'config.json')}: quantization_config has quant_method "awq", which is not supported`));
});
