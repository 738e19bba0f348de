// Q5_K and Q6_K blocks: sizes, where ggml reads each field, and the error of quantize → dequantize.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { f16ToF32 } from '../../../src/engine/dtype.ts';
import { dequantizeQ5_K, dequantizeQ6_K, quantizeQ5_K, quantizeQ6_K } from '../../../src/formats/gguf-kquant.ts';
import { ggmlByteSize } from '../../../src/formats/gguf.ts';
import { dequantize, q4kScaleMin } from '../../../src/formats/gguf-quant.ts';

/** Values of varied scale and sign: sub-blocks of one super-block differ by up to 40x. */
const sample = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.61) * (0.05 + (i % 40) * 0.05) + ((i >> 5) % 3 === 0 ? 0.3 : -0.1));

test('block sizes: Q5_K 176 bytes and Q6_K 210 bytes per 256 values', () => {
  assert.equal(quantizeQ5_K(new Float32Array(512)).length, 2 * 176);
  assert.equal(quantizeQ6_K(new Float32Array(512)).length, 2 * 210);
  assert.equal(ggmlByteSize('Q5_K', [3, 256]), 3 * 176);
  assert.equal(ggmlByteSize('Q6_K', [3, 512]), 6 * 210);
  assert.throws(() => quantizeQ6_K(new Float32Array(128)), /not whole blocks of 256/);
});

test('Q5_K layout: d, dmin, 12 packed scale/min bytes, qh (bit j = sub-block j\'s fifth bit), then nibbles', () => {
  // Sub-block j holds 0..31 steps of 1 from 0 (min 0, scale 1); value l has level l: its fifth bit when l >= 16.
  const x = new Float32Array(256);
  for (let j = 0; j < 8; j++) for (let l = 0; l < 32; l++) x[j * 32 + l] = l * (j + 1);
  const q = quantizeQ5_K(x);
  const view = new DataView(q.buffer);
  const d = f16ToF32(view.getUint16(0, true));
  assert.equal(f16ToF32(view.getUint16(2, true)), 0, 'dmin: no negative values');
  for (let j = 0; j < 8; j++) {
    const [sc, m] = q4kScaleMin(q.subarray(4, 16), j);
    assert.equal(m, 0);
    assert.ok(Math.abs(d * sc - (j + 1)) < 0.02 * (j + 1), `sub-block ${j}: step ${d * sc}`);
  }
  const qh = q.subarray(16, 48), ql = q.subarray(48, 176);
  for (let l = 0; l < 32; l++) assert.equal(qh[l], l >= 16 ? 0xff : 0, `qh[${l}]`);
  assert.equal(ql[5], 5 | (5 << 4), 'sub-blocks 0 and 1 share bytes 0..31: low and high nibble');
  assert.equal(ql[32 + 20], 4 | (4 << 4), 'level 20 = 16 + 4');
});

test('Q6_K layout: ql (128), qh (64), 16 int8 scales, then f16 d at byte 208', () => {
  // Integers in -31..31, each sub-block reaching ±31 so that its step is 1: level x + 32, placed as dequantize_row_q6_K reads it.
  const x = Float32Array.from({ length: 256 }, (_, i) => (i % 16 === 0 ? 31 : i % 16 === 1 ? -31 : ((i * 5) % 61) - 30));
  const q = quantizeQ6_K(x);
  const view = new DataView(q.buffer);
  const d = f16ToF32(view.getUint16(208, true));
  for (let j = 0; j < 16; j++) assert.ok(Math.abs(d * view.getInt8(192 + j) - 1) < 0.01, `scale ${j}`);
  const level = (i: number) => {
    const half = i >> 7, l = i & 31, quarter = (i & 127) >> 5;
    const low = (q[half * 64 + l + (quarter & 1) * 32]! >> ((quarter >> 1) * 4)) & 15;
    return low | (((q[128 + half * 32 + l]! >> (2 * quarter)) & 3) << 4);
  };
  for (let i = 0; i < 256; i++) assert.equal(level(i), x[i]! + 32, `value ${i}`);
});

test('quantize → dequantize: within half a step of each sub-block (plus half of dmin for Q5_K)', () => {
  const x = sample(1024);
  for (const [type, quantize, sub, bytesPer] of [['Q5_K', quantizeQ5_K, 32, 176], ['Q6_K', quantizeQ6_K, 16, 210]] as const) {
    const q = quantize(x);
    const back = dequantize(type, q);
    assert.deepEqual(type === 'Q5_K' ? dequantizeQ5_K(q) : dequantizeQ6_K(q), back);
    let sq = 0, err = 0;
    for (let s = 0; s < x.length / sub; s++) {
      const part = x.subarray(s * sub, (s + 1) * sub);
      const b = Math.floor((s * sub) / 256), view = new DataView(q.buffer, b * bytesPer);
      // One step: the sub-block's range over 31 levels (Q5_K) or its largest magnitude over 31 (Q6_K), rounded up by the 6/8-bit scale.
      const step = type === 'Q5_K' ? (Math.max(...part) - Math.min(0, ...part)) / 31 : Math.max(...part.map(Math.abs)) / 31;
      const d = f16ToF32(view.getUint16(type === 'Q5_K' ? 0 : 208, true)), dmin = type === 'Q5_K' ? f16ToF32(view.getUint16(2, true)) : 0;
      const bound = 0.5 * (step + d) + 0.5 * dmin + 1e-6;
      part.forEach((v, l) => {
        const e = Math.abs(back[s * sub + l]! - v);
        assert.ok(e <= bound, `${type} sub-block ${s} value ${l}: error ${e} > ${bound}`);
        sq += v * v;
        err += e * e;
      });
    }
    const rel = Math.sqrt(err / sq);
    // Each bit about halves the error: Q4_K's is 0.074 on these values, Q5_K's 0.037, Q6_K's 0.017.
    assert.ok(rel < (type === 'Q5_K' ? 0.045 : 0.022), `${type}: relative RMS error ${rel}`);
  }
});
