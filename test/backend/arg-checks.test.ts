// The shared argument checks (src/backends/arg-checks.ts) and lifetimes (src/backends/tensor-ledger.ts): every bad
// call below throws, and throws the same message on js, cpu and cuda (cuda skips without a GPU); a tensor used
// after free or freeArena throws naming the op and the tensor, as does a download into a wrong array; the js reference
// poisons what it frees.

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import type { Backend } from '../../src/engine/backend.ts';
import { quantize4bit } from '../../src/formats/bnb-4bit.ts';
import { needCpu } from '../helpers/cpu-backend.ts';
import { needCuda } from '../helpers/cuda.ts';

type BadCall = [what: string, call: (be: Backend) => void];

/** Calls that break one rule each; all their tensors are f32 or i32, which every backend takes. */
const BAD_CALLS: BadCall[] = [
  ['a tensor too small', (be) => be.matmulForward(f32(be, 36), f32(be, 32), f32(be, 32), null, 4, 8, 9)],
  ['an i32 tensor where floats go', (be) => be.add(f32(be, 4), f32(be, 4), i32(be, 4))],
  ['a float tensor where ids go', (be) => be.embeddingForward(f32(be, 8), f32(be, 2), f32(be, 16), 2, 4)],
  ['an f32-only argument given i32', (be) => be.crossEntropy(f32(be, 2), null, i32(be, 8), i32(be, 2), 2, 4, 1)],
  ['argmax ids into floats', (be) => be.argmaxRows(f32(be, 2), f32(be, 8), 2, 4)],
  ['argmax over empty rows', (be) => be.argmaxRows(i32(be, 2), f32(be, 0), 2, 0)],
  ['a negative dimension', (be) => be.swigluForward(f32(be, 4), f32(be, 4), f32(be, 4), -1)],
  ['a fractional dimension', (be) => be.rmsnormForward(f32(be, 8), f32(be, 2), f32(be, 8), f32(be, 4), 2, 4.5, 1e-6)],
  ['an odd head size for rope', (be) => be.rope(f32(be, 6), f32(be, 3), f32(be, 3), 1, 1, 2, 3, false)],
  ['heads that do not group', (be) => be.attentionForward(f32(be, 48), f32(be, 3), f32(be, 48), f32(be, 32), f32(be, 32), null, 1, 1, 1, 1, 3, 2, 16)],
  ['Tq beyond Tk', (be) => be.attentionForward(f32(be, 64), f32(be, 4), f32(be, 64), f32(be, 64), f32(be, 64), null, 1, 2, 1, 2, 2, 2, 16)],
  ['a mask and segments at once', (be) => be.attentionForward(f32(be, 32), f32(be, 2), f32(be, 32), f32(be, 32), f32(be, 32), i32(be, 1), 1, 1, 1, 1, 2, 2, 16, i32(be, 1))],
  ['a paged block outside the cache', (be) => be.attentionPaged(f32(be, 32), f32(be, 32), f32(be, 32), f32(be, 32), [f32(be, 64)], [f32(be, 64)], Int32Array.from([0, 1, 1]), Int32Array.from([2]), 1, 2, 2, 16, 2, 1)],
  ['copy between different sizes', (be) => be.copy(f32(be, 4), f32(be, 5))],
  ['copy between i32 and floats', (be) => be.copy(f32(be, 4), i32(be, 4))],
  ['copyTime past the end', (be) => be.copyTime(f32(be, 8), f32(be, 8), 1, 2, 4, 3, 4, 0, 2)],
  ['an adamw moment too small', (be) => be.adamw(f32(be, 8), f32(be, 8), f32(be, 4), f32(be, 8), 1e-3, 0.9, 0.999, 1e-8, 0, 1)],
  ['an upload of the wrong length', (be) => be.upload(f32(be, 4), new Float32Array(3))],
  ['an upload of ints into floats', (be) => be.upload(f32(be, 4), new Int32Array(4))],
  ['a view past the end', (be) => be.view(f32(be, 4), 2, [3])],
  ['a tensor no backend made', (be) => be.fill({ shape: [2], dtype: 'f32', arena: 'scratch', size: 2, handle: new Float32Array(2) }, 0)],
];

const f32 = (be: Backend, n: number) => be.alloc([n], 'f32', 'scratch');
const i32 = (be: Backend, n: number) => be.alloc([n], 'i32', 'scratch');

function errorOf(call: () => void): string {
  try {
    call();
  } catch (err) {
    return (err as Error).message;
  }
  return 'no error';
}

/** The message of each bad call on `be`, and of a use after free and after freeArena (of a view, too). */
async function messages(be: Backend): Promise<string[]> {
  const out = BAD_CALLS.map(([, call]) => errorOf(() => call(be)));
  for (const [t, into] of [[f32(be, 4), new Float32Array(3)], [i32(be, 4), new Float32Array(4)]] as const) {
    out.push(await be.download(t, into).then(() => 'no error', (err: Error) => err.message)); // a wrong `into`
  }
  const freed = be.alloc([2, 3], 'f32', 'weights');
  be.free(freed);
  out.push(errorOf(() => be.scale(freed, 2)));
  const inArena = be.alloc([4], 'f32', 'activations');
  const view = be.view(inArena, 1, [2]);
  be.freeArena('activations');
  out.push(errorOf(() => be.add(f32(be, 2), f32(be, 2), view)));
  out.push(await be.download(inArena).then(() => 'no error', (err: Error) => err.message));
  be.freeArena('scratch');
  return out;
}

const reference = await messages(new JsBackend());

test('each bad call throws on the js reference, naming the op', () => {
  assert.equal(reference.length, BAD_CALLS.length + 5);
  for (const [i, message] of reference.entries()) {
    assert.notEqual(message, 'no error', BAD_CALLS[i]?.[0] ?? 'a wrong download target or a use after free');
    assert.match(message, /^(matmulForward|add|embeddingForward|crossEntropy|argmaxRows|swigluForward|rmsnormForward|rope|attentionForward|attentionPaged|copy|copyTime|adamw|upload|view|fill|scale|download): /);
  }
  assert.equal(reference[0], 'matmulForward: weight has 32 elements, the op needs 72');
  assert.equal(reference[BAD_CALLS.length], 'download: into must be a Float32Array of 4 values');
  assert.equal(reference[BAD_CALLS.length + 1], 'download: into is for float tensors, not i32');
  assert.equal(reference.at(-3), 'scale: t (f32 [2, 3], arena weights) was used after it was freed');
  assert.equal(reference.at(-2), 'add: b (f32 [2], arena activations) was used after it was freed');
  assert.equal(reference.at(-1), 'download: t (f32 [4], arena activations) was used after it was freed');
});

async function sameAsJs(t: TestContext, be: Backend | null): Promise<void> {
  if (!be) return;
  const got = await messages(be);
  for (const [i, message] of got.entries()) assert.equal(message, reference[i], `${be.name}: ${BAD_CALLS[i]?.[0] ?? 'a wrong download target or a use after free'}`);
  t.diagnostic(`${got.length} bad calls throw the same message on ${be.name} as on js`);
}

test('the cpu backend throws the same messages as the js reference', (t) => sameAsJs(t, needCpu(t)));

test('the cuda backend throws the same messages as the js reference', (t) => sameAsJs(t, needCuda(t, 'f32')));

test('the js reference poisons what it frees: NaN floats, -2^31 ints, NaN 4-bit scales', () => {
  const be = new JsBackend();
  const a = be.alloc([3], 'f32', 'weights'), h = be.alloc([2], 'bf16', 'weights'), ids = be.alloc([2], 'i32', 'grads');
  be.upload(a, Float32Array.of(1, 2, 3));
  const view = be.view(a, 1, [2]);
  const viewData = view.handle as Float32Array;
  const q = quantize4bit(Float32Array.from({ length: 128 }, (_, i) => i / 128), [2, 64], 'nf4', 64, false);
  const w = be.uploadQuantized(q, 'weights');
  be.free(ids);
  be.freeArena('weights');
  assert.ok([...viewData].every(Number.isNaN), 'a view sees its freed parent\'s NaN');
  assert.deepEqual([...(h.handle as Uint16Array)], [0x7fc0, 0x7fc0], 'bf16 NaN bits');
  assert.deepEqual([...(ids.handle as Int32Array)], [-0x80000000, -0x80000000]);
  assert.ok([...((w.handle as { absmax: Float32Array }).absmax)].every(Number.isNaN));
  assert.throws(() => be.matmulForward(be.alloc([1, 2], 'f32', 'scratch'), be.alloc([1, 64], 'f32', 'scratch'), w, null, 1, 64, 2),
    /^Error: matmulForward: weight \(nf4 \[2, 64\], arena weights\) was used after it was freed$/);
  be.free(a); // freeing again, or freeing a view, releases nothing and does not throw
  be.free(view);
});
