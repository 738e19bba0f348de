// download(t, into): the values of a plain download written into the caller's array, which is returned (decode
// reuses one array for every step's logits); f32, bf16 and f16 tensors and a view, on each backend here. Exact:
// both paths widen the same stored values. Bad `into` arguments are arg-checks.test.ts's.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backend } from '../../src/engine/backend.ts';
import { testBackends } from '../helpers/backends.ts';

async function check(be: Backend): Promise<void> {
  const values = Float32Array.from({ length: 37 }, (_, i) => Math.sin(i) * 100);
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    const t = be.alloc([37], dtype, 'scratch');
    be.upload(t, values);
    for (const [src, n] of [[t, 37], [be.view(t, 5, [30]), 30]] as const) {
      const want = (await be.download(src)) as Float32Array;
      const into = new Float32Array(n + 4).subarray(2, 2 + n).fill(NaN);
      const got = await be.download(src, into);
      assert.equal(got, into, `${dtype}: the given array is returned`);
      assert.deepEqual(Array.from(got), Array.from(want), `${dtype} ${n} values`);
    }
  }
  be.freeArena('scratch');
}

for (const backend of testBackends()) {
  test(`${backend.name}: download into a given array = a new download`, () => check(backend.make()));
}
