// Rope inverse frequencies and cos/sin tables against torch's float32 evaluation of transformers' formulas
// (rope-reference.json, made by rope-reference.py); a decode step's rows (writeRopeTables) against the formula.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadLlamaConfig, parseLlamaConfig } from '../../../src/arch/llama-config.ts';
import type { LlamaConfig } from '../../../src/arch/llama-config.ts';
import { ropeInvFreq, ropeTables, writeRopeTables } from '../../../src/model/rope.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';

/** transformers' formulas evaluated by torch in float32 (see rope-reference.py). */
const REF = JSON.parse(readFileSync(new URL('./rope-reference.json', import.meta.url), 'utf8')) as Record<string, number[]>;

function cfg(headDim: number, maxPositions: number, rope: Record<string, unknown>): LlamaConfig {
  return parseLlamaConfig({
    model_type: 'llama', vocab_size: 10, hidden_size: 2 * headDim, intermediate_size: 8, num_hidden_layers: 1,
    num_attention_heads: 2, head_dim: headDim, max_position_embeddings: maxPositions, rope_parameters: rope,
  }, 'test');
}

const LLAMA3 = { rope_type: 'llama3', rope_theta: 5e5, factor: 8, low_freq_factor: 1, high_freq_factor: 4 };

test('inverse frequencies equal torch\'s float32 values bit for bit, for every rope type', () => {
  const cases: [string, number[]][] = [
    ['default_1e4_16', [...ropeInvFreq(cfg(16, 2048, { rope_type: 'default', rope_theta: 1e4 }))]],
    ['default_5e5_128', [...ropeInvFreq(cfg(128, 2048, { rope_type: 'default', rope_theta: 5e5 }))]],
    ['linear_1e4_32_f4', [...ropeInvFreq(cfg(32, 2048, { rope_type: 'linear', rope_theta: 1e4, factor: 4 }))]],
    ['llama3_5e5_16', [...ropeInvFreq(cfg(16, 256, { ...LLAMA3, original_max_position_embeddings: 64 }))]],
    ['llama3_5e5_128', [...ropeInvFreq(cfg(128, 131072, { ...LLAMA3, original_max_position_embeddings: 8192 }))]],
    ['dynamic_1e4_64_f2_2048_5000', [...ropeInvFreq(cfg(64, 2048, { rope_type: 'dynamic', rope_theta: 1e4, factor: 2 }), 5000)]],
  ];
  for (const [name, actual] of cases) assert.deepEqual(actual, REF[name], name);
});

test('dynamic scaling changes nothing up to max_position_embeddings', () => {
  const dynamic = cfg(64, 2048, { rope_type: 'dynamic', rope_theta: 1e4, factor: 2 });
  const plain = cfg(64, 2048, { rope_type: 'default', rope_theta: 1e4 });
  assert.deepEqual(ropeInvFreq(dynamic, 2048), ropeInvFreq(plain));
  assert.notDeepEqual(ropeInvFreq(dynamic, 2049), ropeInvFreq(plain));
});

test('cos/sin tables are (T, headDim/2) of position × frequency, within an ulp of torch', () => {
  const positions = [0, 1, 5, 39, 1000, 4095];
  const { cos, sin } = ropeTables(cfg(16, 256, { ...LLAMA3, original_max_position_embeddings: 64 }), positions);
  assert.equal(cos.length, positions.length * 8);
  for (const [name, table] of [['cos_llama3', cos], ['sin_llama3', sin]] as const) {
    REF[name]!.forEach((expected, i) => assert.ok(Math.abs(table[i]! - expected) <= 1.2e-7, `${name}[${i}]: ${table[i]} vs ${expected}`));
  }
  assert.deepEqual([...cos.subarray(0, 8)], new Array(8).fill(1), 'position 0');
});

test('the llama3-rope fixture config gives the llama3 frequencies', (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama3-rope', 'config.json')) return;
  assert.deepEqual([...ropeInvFreq(loadLlamaConfig(sharedPath('fixtures', 'models', 'llama3-rope')))], REF.llama3_5e5_16);
});

test('a decode step\'s rows are cos/sin of float32 position x frequency, bit for bit: cached by position (across the cache\'s growth) or, dynamic, computed', () => {
  const configs = [
    cfg(16, 2048, { rope_type: 'default', rope_theta: 1e4 }),
    cfg(32, 256, { rope_type: 'dynamic', rope_theta: 1e4, factor: 2 }), // positions past 256 change the frequencies
  ];
  for (const config of configs) {
    const half = config.headDim / 2;
    // a step's rows one by one, as decode writes them, first short then past the first table (256 rows) and back
    for (const positions of [[0, 1, 2], [5, 300, 7], [1000, 255, 256], [20000, 3]]) {
      const cos = new Float32Array((positions.length + 1) * half).fill(9), sin = new Float32Array(cos.length).fill(9);
      positions.forEach((p, t) => writeRopeTables(config, [p], cos, sin, t + 1));
      for (const [t, p] of positions.entries()) {
        // the formula, evaluated here: angle = fround(fround(p) * inv[i]) with the frequencies for positions up to p
        const inv = ropeInvFreq(config, p + 1), angles = Array.from(inv, (x) => Math.fround(Math.fround(p) * x));
        const want = { cos: Float32Array.from(angles, Math.cos), sin: Float32Array.from(angles, Math.sin) };
        assert.deepEqual(cos.subarray((t + 1) * half, (t + 2) * half), want.cos, `${config.ropeScaling?.type ?? 'default'} cos at ${p}`);
        assert.deepEqual(sin.subarray((t + 1) * half, (t + 2) * half), want.sin, `${config.ropeScaling?.type ?? 'default'} sin at ${p}`);
      }
      assert.deepEqual([...cos.subarray(0, half)], new Array(half).fill(9), 'row 0 untouched');
    }
  }
});
