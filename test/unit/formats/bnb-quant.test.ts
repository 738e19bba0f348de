// bitsandbytes' quantization math against its own outputs (../shared/fixtures/quant/ops_golden.*): code tables,
// every 4-bit case byte-exact (packed codes, absmax, nested absmax codes/absmax/offset) and its dequantization
// bit-exact in float32; LLM.int8 CB/SCB exact and the 8-bit linear within 5e-4 of the output's largest
// magnitude + 1e-3 relative (bitsandbytes computes it in float16; measured worst 2.2e-4 of the largest).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { NestedAbsmax, Quantized4bit } from '../../../src/engine/quantized.ts';
import { quantize4bit } from '../../../src/formats/bnb-4bit.ts';
import { dequantize, FP4_CODE, NF4_CODE } from '../../../src/engine/quantized.ts';
import { dynamicMap } from '../../../src/formats/bnb-codes.ts';
import { int8Linear, quantizeInt8Rows } from '../../../src/formats/bnb-int8.ts';
import { readSafetensors } from '../../../src/formats/safetensors.ts';
import type { HostData, HostTensor } from '../../../src/formats/host-tensor.ts';
import { assertClose, maxAbs } from '../../helpers/golden.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';

interface Case { name: string; weight: string; shape: [number, number]; quant_type: 'nf4' | 'fp4'; blocksize: number; double_quant: boolean }

let golden: { tensors: Map<string, HostTensor>; cases: Case[] } | null = null;
function readGolden(): { tensors: Map<string, HostTensor>; cases: Case[] } {
  golden ??= {
    tensors: readSafetensors(sharedPath('fixtures', 'quant', 'ops_golden.safetensors')),
    cases: JSON.parse(readFileSync(sharedPath('fixtures', 'quant', 'ops_golden.json'), 'utf8')).cases,
  };
  return golden;
}

function tensor(name: string): HostData {
  const t = readGolden().tensors.get(name);
  assert.ok(t, `ops_golden.safetensors has no ${name}`);
  return t.data;
}

/** Same length and the same bits in every element (float32 compared as its bit pattern). */
function assertBits(actual: HostData, expected: HostData, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const bits = (d: HostData) => (d instanceof Float32Array ? new Uint32Array(d.buffer, d.byteOffset, d.length) : d);
  const a = bits(actual), e = bits(expected);
  for (let i = 0; i < e.length; i++) if (a[i] !== e[i]) assert.fail(`${what}: element ${i} is ${actual[i]} but bitsandbytes has ${expected[i]}`);
}

test('NF4, FP4 and the dynamic map are bitsandbytes\' tables', (t) => {
  if (!needShared(t, 'fixtures', 'quant')) return;
  assertBits(NF4_CODE, tensor('nf4_code'), 'nf4_code');
  assertBits(FP4_CODE, tensor('fp4_code'), 'fp4_code');
  assertBits(dynamicMap(), tensor('dynamic_map'), 'dynamic_map');
});

test('every 4-bit case quantizes byte-exact and dequantizes bit-exact', (t) => {
  if (!needShared(t, 'fixtures', 'quant')) return;
  const { cases } = readGolden();
  assert.equal(cases.length, 24);
  for (const c of cases) {
    const q = quantize4bit(tensor(c.weight) as Float32Array, c.shape, c.quant_type, c.blocksize, c.double_quant);
    assertBits(q.packed, tensor(`${c.name}.packed`), `${c.name}.packed`);
    if (c.double_quant) {
      const nested = q.absmax as NestedAbsmax;
      assertBits(nested.codes, tensor(`${c.name}.absmax`), `${c.name}.absmax`);
      assertBits(nested.nestedAbsmax, tensor(`${c.name}.nested_absmax`), `${c.name}.nested_absmax`);
      assertBits(Float32Array.of(nested.offset), tensor(`${c.name}.nested_offset`), `${c.name}.nested_offset`);
      assertBits(nested.nestedMap, tensor('dynamic_map'), `${c.name} nested map`);
      assert.equal(nested.nestedBlocksize, 256);
    } else {
      assertBits(q.absmax as Float32Array, tensor(`${c.name}.absmax`), `${c.name}.absmax`);
    }
    assertBits(dequantize(q), tensor(`${c.name}.dequantized`), `${c.name}.dequantized`);
  }
});

test('bitsandbytes\' own 4-bit bytes dequantize bit-exact', (t) => {
  if (!needShared(t, 'fixtures', 'quant')) return;
  for (const c of readGolden().cases) {
    const absmax = c.double_quant
      ? {
          codes: tensor(`${c.name}.absmax`) as Uint8Array,
          nestedAbsmax: tensor(`${c.name}.nested_absmax`) as Float32Array,
          nestedMap: tensor('dynamic_map') as Float32Array,
          nestedBlocksize: 256,
          offset: tensor(`${c.name}.nested_offset`)[0] as number,
        }
      : (tensor(`${c.name}.absmax`) as Float32Array);
    const q: Quantized4bit = { type: c.quant_type, shape: c.shape, blocksize: c.blocksize, packed: tensor(`${c.name}.packed`) as Uint8Array, absmax, dtype: 'f32' };
    assertBits(dequantize(q), tensor(`${c.name}.dequantized`), `${c.name}.dequantized from bitsandbytes' bytes`);
  }
});

test('4-bit edge cases: an odd count pads with the code of 0, zero blocks, bad arguments', () => {
  const q = quantize4bit(Float32Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, -1, 0.5), [5, 7], 'nf4', 32);
  assert.deepEqual([...q.absmax as Float32Array], [0, 1]); // a whole zero block keeps absmax 0
  assert.equal(q.packed.length, 18);
  assert.equal(q.packed[16], 0xf0, '1 → nf4 code 15, -1 → code 0');
  assert.equal(q.packed[17], 0xc7, '0.5 → code 12 (0.4407, nearer than 0.5626), padding 0 → code 7');
  assert.deepEqual([...dequantize(q).slice(30)], [0, 0, 1, -1, Math.fround(0.44070982933044434)]);
  const zeros = quantize4bit(new Float32Array(3), [1, 3], 'fp4', 64);
  assert.equal((zeros.absmax as Float32Array)[0], Math.fround(1e-38), 'a short block floors its absmax at 1e-38');
  assert.deepEqual([...zeros.packed], [0, 0]);
  assert.throws(() => quantize4bit(new Float32Array(4), [2, 2], 'nf4', 48), /blocksize 48/);
  assert.throws(() => quantize4bit(new Float32Array(5), [2, 2], 'nf4', 64), /5 values do not fill shape \[2, 2\]/);
});

test('LLM.int8: CB and SCB exact, dequantized within half a step', (t) => {
  if (!needShared(t, 'fixtures', 'quant')) return;
  const w = tensor('int8.w') as Float32Array;
  const q = quantizeInt8Rows(w, [48, 64]);
  assertBits(q.weight, tensor('int8.CB'), 'int8.CB');
  assertBits(q.scb, tensor('int8.SCB'), 'int8.SCB');
  const d = dequantize(q);
  for (let i = 0; i < d.length; i++) {
    const halfStep = q.scb[Math.floor(i / 64)]! / 254;
    assert.ok(Math.abs(d[i]! - w[i]!) <= halfStep * 1.001 + Math.abs(w[i]!) * 2 ** -11, `int8.w element ${i}: ${d[i]} vs ${w[i]}`);
  }
});

test('LLM.int8 linear with and without outlier columns matches bitsandbytes', (t) => {
  if (!needShared(t, 'fixtures', 'quant')) return;
  const q = quantizeInt8Rows(tensor('int8.w') as Float32Array, [48, 64]);
  const x = tensor('int8.x') as Float32Array;
  const bias = tensor('int8.bias') as Float32Array;
  const close = (name: string, threshold: number) => {
    const expected = tensor(name) as Float32Array;
    assertClose(int8Linear(x, 10, q, bias, threshold), expected, 1e-3, 5e-4 * maxAbs(expected), name);
  };
  close('int8.out_t6', 6);
  close('int8.out_t0', 0);
  const t6 = tensor('int8.out_t6') as Float32Array;
  assert.throws(() => assertClose(tensor('int8.out_f32') as Float32Array, t6, 1e-3, 5e-4 * maxAbs(t6), 'float'), /element/, 'the tolerance tells int8 from float');
  assert.throws(() => assertClose(int8Linear(x, 10, q, bias, 0), t6, 1e-3, 5e-4 * maxAbs(t6), 'no outliers'), /element/, 'and outliers from none');
});
