// checkWrittenWeights on NaNs: an adapter holding NaN is named as such (not "logits differ by up to NaN"), and
// a base holding NaN is named as such (not "the adapter's delta is zero").

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import type { HostLora } from '../../../src/export/host-lora.ts';
import type { MergedCheckpoint } from '../../../src/export/merged-checkpoint.ts';
import { checkWrittenWeights } from '../../../src/export/verify.ts';
import type { HostTensor } from '../../../src/formats/host-tensor.ts';

const NAME = 'model.layers.0.self_attn.q_proj.weight';
const f32 = (values: number[]): HostTensor => ({ dtype: 'F32', shape: [2, 2], data: Float32Array.from(values) });

function merged(base: number[], A: number[], B: number[]): MergedCheckpoint {
  const delta = [0, 1, 2, 3].map((i) => B[i >> 1]! * A[i & 1]!); // (out=2, r=1) × (r=1, in=2)
  const lora = { r: 1, scaling: 1, pairs: new Map([[NAME, { A: Float32Array.from(A), B: Float32Array.from(B) }]]) } as unknown as HostLora;
  return {
    names: [NAME], lora, isAdapted: () => true, readBase: () => f32(base), read: () => f32(base.map((b, i) => b + delta[i]!)),
  } as unknown as MergedCheckpoint;
}

const written = (m: MergedCheckpoint) => ({ read: (name: string) => m.read(name) });

test('an adapter holding NaN is named, with the tensor', () => {
  const m = merged([1, 2, 3, 4], [NaN, 1], [1, 1]);
  assert.throws(() => checkWrittenWeights(m, written(m)), (e: Error) => e instanceof UserError && /the adapter holds 1 NaN or infinite values in its lora_A\/lora_B for model\.layers\.0\.self_attn\.q_proj\.weight/.test(e.message));
});

test('a base holding NaN is named, not mistaken for a zero delta', () => {
  const m = merged([NaN, NaN, NaN, NaN], [1, 1], [1, 1]);
  assert.throws(() => checkWrittenWeights(m, written(m)), (e: Error) => e instanceof UserError && /the base model holds 4 NaN or infinite values in model\.layers\.0/.test(e.message));
  const zero = merged([1, 2, 3, 4], [1, 1], [0, 0]);
  assert.throws(() => checkWrittenWeights(zero, written(zero)), /the adapter's delta is zero there/);
  const fine = merged([1, 2, 3, 4], [1, 1], [1, 1]);
  checkWrittenWeights(fine, written(fine));
});
