// Host tensors: widening every storage dtype to float32 and storing float32 back, with torch's rounding.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromFloat32, toFloat32 } from '../../../src/formats/host-tensor.ts';

test('toFloat32 widens every storage dtype', () => {
  assert.deepEqual([...toFloat32({ dtype: 'BF16', shape: [3], data: Uint16Array.of(0x3f80, 0xc000, 0x3f81) })], [1, -2, 1.0078125]);
  assert.deepEqual([...toFloat32({ dtype: 'F16', shape: [3], data: Uint16Array.of(0x3c00, 0xc000, 0x0001) })], [1, -2, 2 ** -24]);
  assert.deepEqual([...toFloat32({ dtype: 'I64', shape: [2], data: BigInt64Array.of(-3n, 7n) })], [-3, 7]);
  assert.deepEqual([...toFloat32({ dtype: 'I32', shape: [2], data: Int32Array.of(-3, 7) })], [-3, 7]);
  assert.deepEqual([...toFloat32({ dtype: 'I8', shape: [2], data: Int8Array.of(-128, 127) })], [-128, 127]);
  assert.deepEqual([...toFloat32({ dtype: 'BOOL', shape: [2], data: Uint8Array.of(0, 1) })], [0, 1]);
  const f32 = Float32Array.of(0.5);
  assert.equal(toFloat32({ dtype: 'F32', shape: [1], data: f32 }), f32, 'F32 data is returned as is');
});

test('fromFloat32 rounds to nearest even for 16-bit floats and keeps the shape', () => {
  // 1 + 2^-8 lies halfway between two bf16 values: ties to the even one (1.0); 1 + 3*2^-8 rounds up.
  const bf = fromFloat32(Float32Array.of(1 + 2 ** -8, 1 + 3 * 2 ** -8, -0.5), [3], 'BF16');
  assert.deepEqual([...(bf.data as Uint16Array)], [0x3f80, 0x3f82, 0xbf00]);
  const h = fromFloat32(Float32Array.of(1, 65520, 2 ** -25 * 3), [3], 'F16');
  assert.deepEqual([...(h.data as Uint16Array)], [0x3c00, 0x7c00, 0x0002]);
  const ints = fromFloat32(Float32Array.of(-2.7, 3.9), [1, 2], 'I64');
  assert.deepEqual([...(ints.data as BigInt64Array)], [-2n, 3n]);
  assert.deepEqual(ints.shape, [1, 2]);
  assert.deepEqual([...(fromFloat32(Float32Array.of(0, -1, 2), [3], 'BOOL').data as Uint8Array)], [0, 1, 1]);
  assert.throws(() => fromFloat32(Float32Array.of(1, 2), [3], 'F32'), /do not fill shape \[3\]/);
});
