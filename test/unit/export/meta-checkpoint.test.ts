// Meta's layout: params.json derivation (multiple_of / ffn_dim_multiplier for the released LLaMA sizes and
// for small models), and the q/k row permutation checked against the rotary math it exists for.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLlamaConfig } from '../../../src/arch/llama-config.ts';
import { ffnParams, metaIntermediateSize, metaParams, permuteRotaryRows } from '../../../src/formats/meta-checkpoint.ts';

test('multiple_of alone reproduces LLaMA 1/2 sizes; an ffn_dim_multiplier is inferred where it must be', () => {
  assert.deepEqual(ffnParams(4096, 11008, 'x'), { multiple_of: 256 }); // 7B
  assert.deepEqual(ffnParams(5120, 13824, 'x'), { multiple_of: 256 }); // 13B
  assert.deepEqual(ffnParams(256, 688, 'x'), { multiple_of: 16 }); // tiny-english
  for (const [dim, inter] of [[8192, 28672], [4096, 14336], [32, 64], [64, 160], [100, 97]] as const) {
    const p = ffnParams(dim, inter, 'x');
    assert.equal(metaIntermediateSize(dim, p.multiple_of, p.ffn_dim_multiplier), inter, `dim ${dim}`);
  }
  assert.equal(metaIntermediateSize(8192, 4096, 1.3), 28672); // Meta's own 70B params
  assert.equal(metaIntermediateSize(4096, 1024, 1.3), 14336); // Llama 3 8B
});

test('params.json comes from config.json; what Meta cannot express is refused by name', () => {
  const base = {
    model_type: 'llama', hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32,
    num_key_value_heads: 8, vocab_size: 32000, rms_norm_eps: 1e-5, rope_theta: 500000,
  };
  assert.deepEqual(metaParams(parseLlamaConfig(base, 'c.json'), 'c.json'), {
    dim: 4096, n_layers: 32, n_heads: 32, n_kv_heads: 8, vocab_size: 32000, multiple_of: 256, norm_eps: 1e-5, rope_theta: 500000,
  });
  assert.throws(() => metaParams(parseLlamaConfig({ ...base, attention_bias: true }, 'c.json'), 'c.json'), /c\.json: linear-layer biases has no place/);
  assert.throws(() => metaParams(parseLlamaConfig({ ...base, rope_scaling: { rope_type: 'linear', factor: 2 } }, 'c.json'), 'c.json'), /rope scaling/);
});

/** Rotate-half rope on one head vector: pairs (i, i + HD/2). */
function ropeHalf(x: number[], angles: number[]): number[] {
  const h = x.length / 2, out = [...x];
  for (let i = 0; i < h; i++) {
    const [c, s] = [Math.cos(angles[i]!), Math.sin(angles[i]!)];
    out[i] = x[i]! * c - x[i + h]! * s;
    out[i + h] = x[i]! * s + x[i + h]! * c;
  }
  return out;
}

/** Interleaved rope (Meta, llama.cpp): pairs (2i, 2i + 1). */
function ropeInterleaved(x: number[], angles: number[]): number[] {
  const out = [...x];
  for (let i = 0; i < x.length / 2; i++) {
    const [c, s] = [Math.cos(angles[i]!), Math.sin(angles[i]!)];
    out[2 * i] = x[2 * i]! * c - x[2 * i + 1]! * s;
    out[2 * i + 1] = x[2 * i]! * s + x[2 * i + 1]! * c;
  }
  return out;
}

test('permuted q rows under interleaved rope give the permuted rotate-half result, and permuting back restores them', () => {
  const heads = 3, HD = 8, C = 5;
  const W = Float32Array.from({ length: heads * HD * C }, (_, i) => Math.sin(i * 1.7) * 3);
  const x = Array.from({ length: C }, (_, i) => Math.cos(i));
  const angles = [0.3, 1.1, 2.0, 0.7];
  const project = (w: Float32Array) => Array.from({ length: heads * HD }, (_, r) => x.reduce((s, v, c) => s + v * w[r * C + c]!, 0));
  const Wm = permuteRotaryRows(W, heads, HD, C, 'interleaved');
  const hf = project(W), meta = project(Wm);
  for (let h = 0; h < heads; h++) {
    const a = ropeHalf(hf.slice(h * HD, (h + 1) * HD), angles);
    const b = ropeInterleaved(meta.slice(h * HD, (h + 1) * HD), angles);
    const bBack = Array.from(permuteRotaryRows(Float32Array.from(b), 1, HD, 1, 'rotate-half'));
    a.forEach((v, i) => assert.ok(Math.abs(v - bBack[i]!) < 1e-5, `head ${h} element ${i}`));
  }
  assert.deepEqual(permuteRotaryRows(Wm, heads, HD, C, 'rotate-half'), W);
  assert.deepEqual([...permuteRotaryRows(Uint16Array.from([0, 1, 2, 3, 4, 5, 6, 7]), 1, 8, 1, 'interleaved')], [0, 4, 1, 5, 2, 6, 3, 7]);
});
