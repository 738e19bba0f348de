// Finite-difference checks of every backward op of the js backend: for a random projection R,
// L = sum(R * forward(x)), summed in float64; the analytic dL/dx from the backward op must match the
// central differences at every element of x.

// Differences: D(h) = (L(x+h) - L(x-h)) / step, with step the difference of the float32 values actually
// stored; D = D(h) + (D(h) - D(2h)) / 3 (Richardson) cancels the h^2 error, leaving O(h^4) ~ 1e-6 at
// h = 0.03. Noise: each forward output is rounded to float32 (2^-24 ~ 6e-8 relative; outputs and R are O(1)),
// ~1e-7 in L, ~1e-5 after dividing by the step (measured: at most 1.2e-5 over six seeds). Bound:
// |D - g| <= 2e-5 + 1e-4 |g|; a backward term off by 0.1% fails it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import { Rng } from '../../src/engine/random.ts';
import type { Tensor } from '../../src/engine/tensor.ts';

const be = new JsBackend();
const rng = new Rng(1234);

function randn(shape: number[], scale = 1): Tensor {
  const t = be.alloc(shape, 'f32', 'scratch');
  const v = new Float32Array(t.size);
  for (let i = 0; i < v.length; i++) v[i] = rng.normal() * scale;
  be.upload(t, v);
  return t;
}

function raw(t: Tensor): Float32Array {
  return t.handle as Float32Array;
}

const H = 0.03, ATOL = 2e-5, RTOL = 1e-4;

/** Checks the analytic gradient `grad` of L(x) at every element of x. */
function check(name: string, x: Tensor, grad: Float32Array, loss: () => number): void {
  const data = raw(x);
  for (let i = 0; i < data.length; i++) {
    const orig = data[i]!;
    const difference = (h: number) => {
      data[i] = orig + h;
      const hi = data[i]!, up = loss();
      data[i] = orig - h;
      const lo = data[i]!, down = loss();
      data[i] = orig;
      return (up - down) / (hi - lo);
    };
    const d1 = difference(H), d2 = difference(2 * H);
    const numeric = d1 + (d1 - d2) / 3;
    const g = grad[i]!;
    assert.ok(Math.abs(numeric - g) <= ATOL + RTOL * Math.abs(g), `${name}[${i}]: numeric ${numeric} vs analytic ${g}`);
  }
}

function dotWith(r: Tensor, out: Tensor): number {
  let s = 0;
  const a = raw(r), b = raw(out);
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

test('matmul backward: input, weight and bias gradients', () => {
  const N = 5, C = 7, OC = 3;
  const x = randn([N, C]), w = randn([OC, C]), b = randn([OC]), out = be.alloc([N, OC], 'f32', 'scratch');
  const R = randn([N, OC]);
  const loss = () => (be.matmulForward(out, x, w, b, N, C, OC), dotWith(R, out));
  const dx = be.alloc([N, C], 'f32', 'scratch'), dw = randn([OC, C]), db = randn([OC]);
  const dw0 = raw(dw).slice(), db0 = raw(db).slice();
  be.matmulBackward(dx, dw, db, R, x, w, N, C, OC);
  check('dx', x, raw(dx), loss);
  check('dw', w, raw(dw).map((v, i) => v - dw0[i]!), loss);
  check('db', b, raw(db).map((v, i) => v - db0[i]!), loss);
});

test('rmsnorm backward', () => {
  const N = 4, C = 9;
  const x = randn([N, C]), w = randn([C]), out = be.alloc([N, C], 'f32', 'scratch'), rstd = be.alloc([N], 'f32', 'scratch');
  const R = randn([N, C]);
  const loss = () => (be.rmsnormForward(out, rstd, x, w, N, C, 1e-5), dotWith(R, out));
  loss();
  const dx = be.alloc([N, C], 'f32', 'scratch'), dw = be.alloc([C], 'f32', 'scratch');
  be.fill(dw, 0);
  be.rmsnormBackward(dx, dw, R, x, w, rstd, N, C);
  check('dx', x, raw(dx), loss);
  check('dw', w, raw(dw), loss);
});

test('rope inverse is the transpose of rope', () => {
  const B = 2, T = 3, H = 2, HD = 6;
  const cos = randn([T, HD / 2]), sin = randn([T, HD / 2]);
  const x = randn([B, T, H, HD]), y = randn([B, T, H, HD]);
  const rx = be.alloc(x.shape, 'f32', 'scratch');
  be.copy(rx, x);
  be.rope(rx, cos, sin, B, T, H, HD, false);
  const ry = be.alloc(y.shape, 'f32', 'scratch');
  be.copy(ry, y);
  be.rope(ry, cos, sin, B, T, H, HD, true);
  assert.ok(Math.abs(dotWith(rx, y) - dotWith(x, ry)) < 1e-4);
});

test('attention backward with GQA and packed segments', () => {
  const B = 2, T = 6, NH = 4, NKV = 2, HD = 3;
  const q = randn([B, T, NH, HD]), k = randn([B, T, NKV, HD]), v = randn([B, T, NKV, HD]);
  const segments = be.alloc([B, T], 'i32', 'scratch');
  be.upload(segments, Int32Array.from([1, 1, 2, 2, 2, 3, 1, 2, 2, 2, 2, 2]));
  const out = be.alloc([B, T, NH, HD], 'f32', 'scratch'), lse = be.alloc([B, NH, T], 'f32', 'scratch');
  const R = randn([B, T, NH, HD]);
  const loss = () => (be.attentionForward(out, lse, q, k, v, null, B, T, T, T, NH, NKV, HD, segments), dotWith(R, out));
  loss();
  const dq = be.alloc(q.shape, 'f32', 'scratch'), dk = be.alloc(k.shape, 'f32', 'scratch'), dv = be.alloc(v.shape, 'f32', 'scratch');
  be.attentionBackward(dq, dk, dv, R, out, lse, q, k, v, null, B, T, NH, NKV, HD, segments);
  check('dq', q, raw(dq), loss);
  check('dk', k, raw(dk), loss);
  check('dv', v, raw(dv), loss);
});

test('attention backward with GQA and a padding mask', () => {
  const B = 2, T = 5, NH = 4, NKV = 2, HD = 3;
  const q = randn([B, T, NH, HD]), k = randn([B, T, NKV, HD]), v = randn([B, T, NKV, HD]);
  const mask = be.alloc([B, T], 'i32', 'scratch');
  be.upload(mask, Int32Array.from([1, 1, 1, 1, 1, 1, 0, 0, 1, 0])); // every query sees at least key 0
  const out = be.alloc([B, T, NH, HD], 'f32', 'scratch'), lse = be.alloc([B, NH, T], 'f32', 'scratch');
  const R = randn([B, T, NH, HD]);
  const loss = () => (be.attentionForward(out, lse, q, k, v, mask, B, T, T, T, NH, NKV, HD), dotWith(R, out));
  loss();
  const dq = be.alloc(q.shape, 'f32', 'scratch'), dk = be.alloc(k.shape, 'f32', 'scratch'), dv = be.alloc(v.shape, 'f32', 'scratch');
  be.attentionBackward(dq, dk, dv, R, out, lse, q, k, v, mask, B, T, NH, NKV, HD);
  check('dq', q, raw(dq), loss);
  check('dk', k, raw(dk), loss);
  check('dv', v, raw(dv), loss);
});

test('swiglu backward', () => {
  const n = 11;
  const g = randn([n]), u = randn([n]), out = be.alloc([n], 'f32', 'scratch'), R = randn([n]);
  const loss = () => (be.swigluForward(out, g, u, n), dotWith(R, out));
  const dg = be.alloc([n], 'f32', 'scratch'), du = be.alloc([n], 'f32', 'scratch');
  be.swigluBackward(dg, du, R, g, u, n);
  check('dgate', g, raw(dg), loss);
  check('dup', u, raw(du), loss);
});

test('cross-entropy gradient, with ignored rows', () => {
  const N = 4, V = 6;
  const logits = randn([N, V]), targets = be.alloc([N], 'i32', 'scratch'), losses = be.alloc([N], 'f32', 'scratch');
  be.upload(targets, Int32Array.from([2, -100, 5, 0]));
  const total = () => {
    be.crossEntropy(losses, null, logits, targets, N, V, 1);
    return raw(losses).reduce((a, b) => a + b, 0);
  };
  total();
  assert.equal(raw(losses)[1], 0);
  const dl = be.alloc([N, V], 'f32', 'scratch');
  be.crossEntropy(losses, dl, logits, targets, N, V, 1);
  check('dlogits', logits, raw(dl), total);
});

test('a query with no visible key (left padding) averages all values, as HF eager attention does', () => {
  const B = 1, T = 4, NH = 1, HD = 2;
  const q = randn([B, T, NH, HD]), k = randn([B, T, NH, HD]), v = randn([B, T, NH, HD]);
  const mask = be.alloc([B, T], 'i32', 'scratch');
  be.upload(mask, Int32Array.from([0, 0, 1, 1]));
  const out = be.alloc([B, T, NH, HD], 'f32', 'scratch'), lse = be.alloc([B, NH, T], 'f32', 'scratch');
  be.attentionForward(out, lse, q, k, v, mask, B, T, T, T, NH, NH, HD);
  const vv = raw(v), o = raw(out);
  for (const row of [0, 1]) {
    for (let d = 0; d < HD; d++) {
      const mean = (vv[d]! + vv[2 + d]! + vv[4 + d]! + vv[6 + d]!) / 4;
      assert.ok(Math.abs(o[row * HD + d]! - mean) < 1e-6);
    }
    assert.ok(Number.isNaN(raw(lse)[row]));
  }
  assert.ok(Math.abs(o[4]! - vv[4]!) < 1e-6, 'row 2 sees only key 2');
});

test('fill stores the value in the tensor dtype', async () => {
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    const t = be.alloc([3], dtype, 'scratch');
    be.fill(t, 1.5);
    assert.deepEqual(Array.from(await be.download(t)), [1.5, 1.5, 1.5], dtype);
  }
});
