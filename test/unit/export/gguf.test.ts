// GGUF files: our writer read back by our reader (every metadata type, every tensor type, alignment), the
// q8_0 / q4_0 block formats against hand-worked blocks and their error bounds, and bad files refused.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { f32ToF16 } from '../../../src/engine/dtype.ts';
import { GgufFile, GgufValueType, type GgufValue } from '../../../src/formats/gguf.ts';
import { dequantizeQ4_0, dequantizeQ4_K, dequantizeQ8_0, q4kScaleMin, quantizeQ4_0, quantizeQ4_K, quantizeQ8_0 } from '../../../src/formats/gguf-quant.ts';
import { gguf, writeGguf } from '../../../src/formats/gguf-write.ts';
import { bytesOf } from '../../../src/formats/host-tensor.ts';
import { tempDir } from '../formats/tmp.ts';

test('every metadata value type and tensor type round-trips; tensor data starts 32-byte aligned', async (t) => {
  const path = join(tempDir(t), 'x.gguf');
  const meta = new Map<string, GgufValue>([
    ['general.architecture', gguf.str('llama')],
    ['u8', { type: GgufValueType.U8, value: 200 }],
    ['i8', { type: GgufValueType.I8, value: -5 }],
    ['u16', { type: GgufValueType.U16, value: 60000 }],
    ['i16', { type: GgufValueType.I16, value: -300 }],
    ['u32', gguf.u32(4e9)],
    ['i32', gguf.i32(-7)],
    ['f32', gguf.f32(0.5)],
    ['bool', gguf.bool(true)],
    ['u64', { type: GgufValueType.U64, value: 2n ** 40n }],
    ['i64', { type: GgufValueType.I64, value: -(2n ** 40n) }],
    ['f64', { type: GgufValueType.F64, value: 1 / 3 }],
    ['tokens', gguf.array(GgufValueType.STRING, ['▁a', '<0x0A>', 'ü'])],
    ['scores', gguf.array(GgufValueType.F32, [0, -1.5])],
  ]);
  const values = Float32Array.from({ length: 64 }, (_, i) => i / 7 - 3);
  const tensors = new Map([
    ['w.f32', { type: 'F32' as const, shape: [3], load: () => bytesOf(Float32Array.of(1, 2, 3)) }],
    ['w.f16', { type: 'F16' as const, shape: [2, 2], load: () => bytesOf(Uint16Array.from([1, 2, 3, 4].map(f32ToF16))) }],
    ['w.q8', { type: 'Q8_0' as const, shape: [2, 32], load: () => quantizeQ8_0(values) }],
    ['w.q4', { type: 'Q4_0' as const, shape: [64], load: () => quantizeQ4_0(values) }],
  ]);
  await writeGguf(path, meta, tensors);
  const f = GgufFile.open(path);
  t.after(() => f.close());
  assert.equal(f.version, 3);
  assert.deepEqual([...f.metadata.keys()], [...meta.keys()]);
  for (const [k, v] of meta) assert.deepEqual(f.metadata.get(k), v, k);
  assert.deepEqual(f.tensors.get('w.f16')!.shape, [2, 2]);
  for (const info of f.tensors.values()) assert.equal(info.offset % 32, 0, info.name);
  assert.deepEqual([...new Float32Array(f.readBytes('w.f32').buffer)], [1, 2, 3]);
  assert.deepEqual(f.readBytes('w.q8'), quantizeQ8_0(values));
  assert.deepEqual(f.readBytes('w.q4'), quantizeQ4_0(values));
  const raw = readFileSync(path);
  assert.equal(raw.toString('latin1', 0, 4), 'GGUF');
  assert.equal(raw.readBigUInt64LE(8), 4n); // tensor count
});

test('q8_0: scale max|x|/127, values rounded half away from zero; error within half a step', () => {
  const x = new Float32Array(32);
  x[0] = 127;
  x[1] = -2.5;
  x[2] = 2.5;
  x[3] = 0.49;
  const q = quantizeQ8_0(x);
  assert.equal(q.length, 34);
  assert.deepEqual([...new Int8Array(q.buffer, 2, 4)], [127, -3, 3, 0]);
  assert.deepEqual([...dequantizeQ8_0(q).subarray(0, 4)], [127, -3, 3, 0]);
  const r = Float32Array.from({ length: 320 }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
  const back = dequantizeQ8_0(quantizeQ8_0(r));
  for (let b = 0; b < 10; b++) {
    const block = r.subarray(b * 32, b * 32 + 32);
    const step = Math.max(...block.map(Math.abs)) / 127;
    block.forEach((v, j) => assert.ok(Math.abs(back[b * 32 + j]! - v) <= step * 0.57, `block ${b} value ${j}`)); // half a step + 127 x the f16 scale's rounding
  }
  assert.deepEqual([...dequantizeQ8_0(quantizeQ8_0(new Float32Array(32)))], new Array(32).fill(0));
});

test('q4_0: scale is the signed extreme over -8, nibbles j and j+16 share a byte; error within half a step', () => {
  const x = Float32Array.from({ length: 32 }, (_, i) => i - 8); // extreme +23: d = 23 / -8
  const q = quantizeQ4_0(x);
  assert.equal(q.length, 18);
  assert.equal(q[2], 11 | (5 << 4)); // -8 -> trunc(-8 / d + 8.5) = 11; 8 -> 5
  assert.equal(q[17]! >> 4, 0); // 23 -> 0
  const back = dequantizeQ4_0(q);
  assert.equal(back[31], 23);
  x.forEach((v, j) => assert.ok(Math.abs(back[j]! - v) <= (23 / 8) * 0.5, `value ${j}: ${back[j]} vs ${v}`));
});

test('q4_K: 144-byte super-blocks; each sub-block\'s 6-bit scale and min packed where ggml reads them; error within a step', () => {
  // Sub-block j spans [-j, 15 + 6j]: scale (15 + 7j) / 15 and min j, so 6-bit levels rise with j, the last at 63.
  const x = new Float32Array(256);
  for (let j = 0; j < 8; j++) for (let l = 0; l < 32; l++) x[j * 32 + l] = -j + ((15 + 7 * j) * l) / 31;
  const q = quantizeQ4_K(x);
  assert.equal(q.length, 144);
  const packed = q.subarray(4, 16);
  for (let j = 0; j < 8; j++) {
    assert.deepEqual(q4kScaleMin(packed, j), [Math.round((63 * (15 + 7 * j)) / 64), Math.round(9 * j)], `sub-block ${j}`);
  }
  const r = Float32Array.from({ length: 512 }, (_, i) => Math.sin(i * 0.61) * (1 + (i % 13)) + (i % 64 < 32 ? 2 : -1));
  const back = dequantizeQ4_K(quantizeQ4_K(r));
  for (let j = 0; j < 16; j++) {
    const sub = r.subarray(j * 32, j * 32 + 32);
    const step = (Math.max(...sub) - Math.min(0, ...sub)) / 15;
    sub.forEach((v, l) => assert.ok(Math.abs(back[j * 32 + l]! - v) <= step * 0.75, `sub-block ${j} value ${l}: ${back[j * 32 + l]} vs ${v}`));
  }
});

test('a file that is not GGUF, or is cut short, is refused with its name', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'no.gguf'), 'not a gguf file at all, sorry');
  assert.throws(() => GgufFile.open(join(dir, 'no.gguf')), /no\.gguf is not a GGUF file.*does not start with "GGUF"/);
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0x46554747, 0);
  header.writeUInt32LE(3, 4);
  header.writeBigUInt64LE(1n, 8);
  header.writeBigUInt64LE(5n, 16);
  writeFileSync(join(dir, 'short.gguf'), header);
  assert.throws(() => GgufFile.open(join(dir, 'short.gguf')), /short\.gguf .*runs past the end/);
});
