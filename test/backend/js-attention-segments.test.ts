// The js reference's packed segments against their definition: attention over a packed row equals attention
// over each segment alone (its own row, positions from 0), forward and backward. The js loops visit the same keys
// in the same order either way, so the results must be equal bit for bit.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import { Rng } from '../../src/engine/random.ts';
import type { Tensor } from '../../src/engine/tensor.ts';
import { segmentIds } from '../helpers/parity-shapes.ts';

const be = new JsBackend();
const rng = new Rng(77);

function tensor(shape: number[], data?: Float32Array | Int32Array): Tensor {
  const t = be.alloc(shape, data instanceof Int32Array ? 'i32' : 'f32', 'scratch');
  be.upload(t, data ?? Float32Array.from({ length: t.size }, () => rng.normal()));
  return t;
}

const rows = (t: Tensor) => t.handle as Float32Array;

test('packed attention = each segment attended alone (out, lse, dq, dk, dv), GQA', () => {
  const T = 13, NH = 4, NKV = 2, HD = 5, lens = [4, 1, 6]; // and a last run of 2
  const runs = [...lens, T - lens.reduce((a, b) => a + b, 0)];
  const q = tensor([1, T, NH, HD]), k = tensor([1, T, NKV, HD]), v = tensor([1, T, NKV, HD]), dout = tensor([1, T, NH, HD]);
  const seg = tensor([1, T], segmentIds(T, [lens]));
  const out = tensor([1, T, NH, HD]), lse = tensor([1, NH, T]);
  const dq = tensor([1, T, NH, HD]), dk = tensor([1, T, NKV, HD]), dv = tensor([1, T, NKV, HD]);
  be.attentionForward(out, lse, q, k, v, null, 1, T, T, T, NH, NKV, HD, seg);
  be.attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, null, 1, T, NH, NKV, HD, seg);
  let t0 = 0;
  for (const n of runs) {
    const part = (x: Tensor, H: number) => tensor([1, n, H, HD], rows(x).slice(t0 * H * HD, (t0 + n) * H * HD));
    const sq = part(q, NH), sk = part(k, NKV), sv = part(v, NKV), sd = part(dout, NH);
    const so = tensor([1, n, NH, HD]), sl = tensor([1, NH, n]);
    const sdq = tensor([1, n, NH, HD]), sdk = tensor([1, n, NKV, HD]), sdv = tensor([1, n, NKV, HD]);
    be.attentionForward(so, sl, sq, sk, sv, null, 1, n, n, n, NH, NKV, HD);
    be.attentionBackward(sdq, sdk, sdv, sd, so, sl, sq, sk, sv, null, 1, n, NH, NKV, HD);
    const same = (whole: Tensor, alone: Tensor, H: number, what: string) =>
      assert.deepEqual(rows(whole).slice(t0 * H * HD, (t0 + n) * H * HD), rows(alone), `${what}, run at ${t0} of ${n}`);
    same(out, so, NH, 'out');
    same(dq, sdq, NH, 'dq');
    same(dk, sdk, NKV, 'dk');
    same(dv, sdv, NKV, 'dv');
    for (let h = 0; h < NH; h++) assert.deepEqual(rows(lse).slice(h * T + t0, h * T + t0 + n), rows(sl).slice(h * n, (h + 1) * n), `lse head ${h}`);
    t0 += n;
  }
});

test('js attention refuses a key mask together with segments', () => {
  const T = 4, out = tensor([1, T, 1, 2]), lse = tensor([1, 1, T]), x = tensor([1, T, 1, 2]);
  const ones = tensor([1, T], new Int32Array(T).fill(1));
  assert.throws(() => be.attentionForward(out, lse, x, x, x, ones, 1, T, T, T, 1, 1, 2, ones), /segments or a key mask, not both/);
});
