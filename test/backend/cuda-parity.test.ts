// Every CUDA op, forward and backward, against the js backend (the spec) on the same random inputs of
// awkward sizes (odd, non-multiples of tiles and warps, GQA, left padding, fully masked rows, KV-cache
// decoding) and realistic attention shapes (test/helpers/parity-shapes.ts, shared with cpu-parity), in both
// precisions. Skips without a GPU (see test/helpers/cuda.ts: CI=true skips too).
// Tolerances, as a fraction of the reference tensor's largest magnitude:
// - exact ops (fill, copy, conversions, copyTime, dropout, embedding forward, AdamW's double math): 1e-6;
//   dropout masks and 16-bit conversions are compared bit for bit;
// - float32 reductions (matmul in f32, RMSNorm, attention in f32, cross-entropy, sum of squares): 1e-5
//   (the js backend sums in float64; float32 sums of a few thousand terms differ by ~1e-6);
// - bf16 precision: matmuls on half weights and TF32 products 2e-2, tensor-core attention 3e-2 (inputs
//   rounded to 8 significant bits: ~2^-9 per product, growing as sqrt(K) over K-term sums).

import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import type { Backend } from '../../src/engine/backend.ts';
import { f32ToHalf, type DType } from '../../src/engine/dtype.ts';
import { Rng } from '../../src/engine/random.ts';
import type { Tensor } from '../../src/engine/tensor.ts';
import type { CudaPrecision } from '../../src/backends/native/cuda.ts';
import { needCuda } from '../helpers/cuda.ts';
import { ATTENTION_SHAPES, DECODE_SHAPES, SEGMENT_DECODE, SEGMENT_SHAPES, paddingMask, segmentIds } from '../helpers/parity-shapes.ts';

const js = new JsBackend();
const rng = new Rng(2024);

const randn = (n: number, scale = 1) => Float32Array.from({ length: n }, () => rng.normal() * scale);

function tensor(be: Backend, shape: number[], data: Float32Array | Int32Array, dtype?: DType): Tensor {
  const type = dtype ?? (data instanceof Int32Array ? 'i32' : 'f32');
  const t = be.alloc(shape, type, 'scratch');
  be.upload(t, type === 'bf16' || type === 'f16' ? f32ToHalf(data as Float32Array, type) : data);
  return t;
}

/** |actual - expected| <= tol * (largest |expected|), NaN only where the reference has NaN. */
function near(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) if (Number.isFinite(expected[i]!)) scale = Math.max(scale, Math.abs(expected[i]!));
  const atol = tol * scale;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    assert.ok(Math.abs(a - e) <= atol, `${what}[${i}]: ${a} vs js ${e} (tolerance ${atol.toExponential(2)})`);
  }
}

/**
 * Runs `op` on js and on cuda with the same inputs; compares every tensor it returns (its outputs, read
 * after the op) within `tol`.
 */
async function same(cu: Backend, what: string, tol: number | number[], op: (be: Backend) => Tensor[]): Promise<void> {
  const results: (Float32Array | Int32Array)[][] = [];
  for (const be of [js, cu]) {
    const outs = op(be);
    results.push(await Promise.all(outs.map((t) => be.download(t))));
    be.freeArena('scratch');
  }
  results[0]!.forEach((expected, i) => near(results[1]![i]!, expected, Array.isArray(tol) ? tol[i]! : tol, `${what} #${i}`));
}

const EXACT = 1e-6, F32 = 1e-5;

for (const precision of ['f32', 'bf16'] as CudaPrecision[]) {
  const MATMUL = precision === 'f32' ? F32 : 2e-2;
  const ATTENTION = precision === 'f32' ? F32 : 3e-2;

  describe(`cuda ${precision} vs js`, () => {
    const cuda = (t: TestContext) => needCuda(t, precision);

    test('upload and download of every dtype, views, fill', async (t) => {
      const cu = cuda(t);
      if (!cu) return;
      const x = randn(1001);
      for (const dtype of ['f32', 'bf16', 'f16'] as const) {
        await same(cu, `round trip ${dtype}`, 0, (be) => [tensor(be, [7, 143], x, dtype)]);
        await same(cu, `f32 values into ${dtype}`, 0, (be) => {
          const t = be.alloc([1001], dtype, 'scratch');
          be.upload(t, x);
          return [t];
        });
      }
      const ids = Int32Array.from({ length: 33 }, (_, i) => i * 7 - 50);
      await same(cu, 'i32 round trip', 0, (be) => [tensor(be, [33], ids)]);
      const base = randn(110);
      await same(cu, 'fill through a view', 0, (be) => {
        const t = tensor(be, [10, 11], base);
        be.fill(be.view(t, 23, [3, 11]), 0.5);
        be.fill(be.view(t, 80, [7]), 0);
        return [t];
      });
      await same(cu, 'fill i32', 0, (be) => {
        const t = be.alloc([9], 'i32', 'scratch');
        be.fill(t, -3);
        return [t];
      });
    });

    test('copy with dtype conversion, add, axpy, scale', async (t) => {
      const cu = cuda(t);
      if (!cu) return;
      const a = randn(517, 3), b = randn(517);
      for (const [from, to] of [['f32', 'bf16'], ['bf16', 'f32'], ['f32', 'f16'], ['f16', 'f32'], ['bf16', 'f16'], ['f32', 'f32']] as const) {
        await same(cu, `copy ${from} -> ${to}`, 0, (be) => {
          const dst = be.alloc([517], to, 'scratch');
          be.copy(dst, tensor(be, [517], a, from));
          return [dst];
        });
      }
      await same(cu, 'add, axpy, scale', EXACT, (be) => {
        const x = tensor(be, [517], a), y = tensor(be, [517], b), out = be.alloc([517], 'f32', 'scratch');
        be.add(out, x, y);
        be.add(x, x, y);
        be.axpy(y, out, -0.375);
        be.scale(out, 1.7);
        return [out, x, y];
      });
    });

    test('copyTime and dropout', async (t) => {
      const cu = cuda(t);
      if (!cu) return;
      const B = 3, W = 5, Tdst = 7, Tsrc = 4;
      const src = randn(B * Tsrc * W), dst = randn(B * Tdst * W);
      await same(cu, 'copyTime', 0, (be) => {
        const d = tensor(be, [B, Tdst, W], dst);
        be.copyTime(d, tensor(be, [B, Tsrc, W], src), B, W, Tdst, 2, Tsrc, 1, 3);
        return [d];
      });
      const x = randn(3001);
      await same(cu, 'dropout', 0, (be) => {
        const inp = tensor(be, [3001], x), out = be.alloc([3001], 'f32', 'scratch');
        be.dropout(out, inp, 0.3, 0xdeadbeef);
        be.dropout(inp, inp, 0.05, 17);
        return [out, inp];
      });
    });

    test('embedding forward and backward', async (t) => {
      const cu = cuda(t);
      if (!cu) return;
      const V = 23, C = 13, N = 19;
      const table = randn(V * C), ids = Int32Array.from({ length: N }, () => rng.int(V)), dout = randn(N * C), dtable = randn(V * C);
      ids[3] = ids[7]!; // a repeated id accumulates
      for (const dtype of ['f32', 'bf16'] as const) {
        await same(cu, `embedding ${dtype}`, [EXACT, F32], (be) => {
          const out = be.alloc([N, C], 'f32', 'scratch'), id = tensor(be, [N], ids), dt = tensor(be, [V, C], dtable);
          be.embeddingForward(out, id, tensor(be, [V, C], table, dtype), N, C);
          be.embeddingBackward(dt, tensor(be, [N, C], dout), id, N, C);
          return [out, dt];
        });
      }
    });

    test('matmul forward and backward: f32, bf16 and f16 weights, GEMV and GEMM shapes, bias', async (t) => {
      const cu = cuda(t);
      if (!cu) return;
      for (const [N, C, OC] of [[3, 37, 19], [1, 64, 130], [70, 96, 130], [5, 8, 33], [129, 200, 72]] as const) {
        for (const dtype of ['f32', 'bf16', 'f16'] as const) {
          const x = randn(N * C), w = randn(OC * C, 0.2), bias = randn(OC), dout = randn(N * OC), dw0 = randn(OC * C), db0 = randn(OC);
          const withBias = N % 2 === 1;
          await same(cu, `matmul ${N}x${C}x${OC} ${dtype}`, MATMUL, (be) => {
            const inp = tensor(be, [N, C], x), weight = tensor(be, [OC, C], w, dtype);
            const out = be.alloc([N, OC], 'f32', 'scratch'), dinp = be.alloc([N, C], 'f32', 'scratch');
            const dweight = tensor(be, [OC, C], dw0), dbias = tensor(be, [OC], db0);
            be.matmulForward(out, inp, weight, withBias ? tensor(be, [OC], bias) : null, N, C, OC);
            be.matmulBackward(dinp, dweight, withBias ? dbias : null, tensor(be, [N, OC], dout), inp, weight, N, C, OC);
            return [out, dinp, dweight, dbias];
          });
        }
      }
    });

    test('matmul: a forward input reused by several projections, then changed in place', async (t) => {
      const cu = cuda(t);
      if (!cu) return;
      const N = 33, C = 48, OC = 40;
      const x = randn(N * C), w1 = randn(OC * C, 0.2), w2 = randn(OC * C, 0.2);
      await same(cu, 'shared input', MATMUL, (be) => {
        const inp = tensor(be, [N, C], x), a = tensor(be, [OC, C], w1, 'bf16'), b = tensor(be, [OC, C], w2, 'bf16');
        const o1 = be.alloc([N, OC], 'f32', 'scratch'), o2 = be.alloc([N, OC], 'f32', 'scratch'), o3 = be.alloc([N, OC], 'f32', 'scratch');
        be.matmulForward(o1, inp, a, null, N, C, OC);
        be.matmulForward(o2, inp, b, null, N, C, OC);
        be.scale(be.view(inp, C, [C]), -2);
        be.matmulForward(o3, inp, a, null, N, C, OC);
        return [o1, o2, o3];
      });
    });

    test('rmsnorm forward and backward', async (t) => {
      const cu = cuda(t);
      if (!cu) return;
      for (const [N, C, dtype] of [[9, 37, 'f32'], [4, 1100, 'bf16'], [1, 4096, 'f16']] as const) {
        const x = randn(N * C, 2), w = randn(C), dout = randn(N * C), dw0 = randn(C);
        await same(cu, `rmsnorm ${N}x${C} ${dtype}`, F32, (be) => {
          const inp = tensor(be, [N, C], x), weight = tensor(be, [C], w, dtype);
          const out = be.alloc([N, C], 'f32', 'scratch'), rstd = be.alloc([N], 'f32', 'scratch'), dinp = be.alloc([N, C], 'f32', 'scratch');
          const dweight = tensor(be, [C], dw0);
          be.rmsnormForward(out, rstd, inp, weight, N, C, 1e-5);
          be.rmsnormBackward(dinp, dweight, tensor(be, [N, C], dout), inp, weight, rstd, N, C);
          return [out, rstd, dinp, dweight];
        });
      }
    });

    test('rope and its inverse', async (t) => {
      const cu = cuda(t);
      if (!cu) return;
      const B = 2, T = 5, H = 3, HD = 10;
      const x = randn(B * T * H * HD), cos = randn(T * HD / 2), sin = randn(T * HD / 2), y = randn(B * T * H * HD);
      await same(cu, 'rope', F32, (be) => {
        const a = tensor(be, [B, T, H, HD], x), b = tensor(be, [B, T, H, HD], y), c = tensor(be, [T, HD / 2], cos), s = tensor(be, [T, HD / 2], sin);
        be.rope(a, c, s, B, T, H, HD, false);
        be.rope(b, c, s, B, T, H, HD, true);
        return [a, b];
      });
    });

    test('swiglu forward and backward', async (t) => {
      const cu = cuda(t);
      if (!cu) return;
      const n = 1001, g = randn(n, 4), u = randn(n), d = randn(n);
      await same(cu, 'swiglu', F32, (be) => {
        const gate = tensor(be, [n], g), up = tensor(be, [n], u), out = be.alloc([n], 'f32', 'scratch');
        const dgate = be.alloc([n], 'f32', 'scratch'), dup = be.alloc([n], 'f32', 'scratch');
        be.swigluForward(out, gate, up, n);
        be.swigluBackward(dgate, dup, tensor(be, [n], d), gate, up, n);
        return [out, dgate, dup];
      });
    });

    for (const { B, T, NH, NKV, HD, pads, holes } of ATTENTION_SHAPES) {
      test(`attention forward and backward B${B} T${T} NH${NH} NKV${NKV} HD${HD} pads ${pads.join(',') || 'none'}`, async (t) => {
        const cu = cuda(t);
        if (!cu) return;
        const nq = B * T * NH * HD, nk = B * T * NKV * HD;
        const q = randn(nq), k = randn(nk), v = randn(nk), dout = randn(nq);
        const mask = pads.length || holes.length ? paddingMask(B, T, pads, holes) : null;
        await same(cu, 'attention', ATTENTION, (be) => {
          const Q = tensor(be, [B, T, NH, HD], q), K = tensor(be, [B, T, NKV, HD], k), V = tensor(be, [B, T, NKV, HD], v);
          const M = mask ? tensor(be, [B, T], mask) : null;
          const out = be.alloc([B, T, NH, HD], 'f32', 'scratch'), lse = be.alloc([B, NH, T], 'f32', 'scratch');
          const dq = be.alloc([B, T, NH, HD], 'f32', 'scratch'), dk = be.alloc([B, T, NKV, HD], 'f32', 'scratch'), dv = be.alloc([B, T, NKV, HD], 'f32', 'scratch');
          be.attentionForward(out, lse, Q, K, V, M, B, T, T, T, NH, NKV, HD);
          be.attentionBackward(dq, dk, dv, tensor(be, [B, T, NH, HD], dout), out, lse, Q, K, V, M, B, T, NH, NKV, HD);
          return [out, lse, dq, dk, dv];
        });
      });
    }

    for (const { B, T, NH, NKV, HD, lens } of SEGMENT_SHAPES) {
      test(`attention with packed segments B${B} T${T} NH${NH} NKV${NKV} HD${HD} runs ${lens.map((r) => r.join('+')).join('|')}`, async (t) => {
        const cu = cuda(t);
        if (!cu) return;
        const nq = B * T * NH * HD, nk = B * T * NKV * HD;
        const q = randn(nq), k = randn(nk), v = randn(nk), dout = randn(nq), seg = segmentIds(T, lens);
        await same(cu, 'attention with segments', ATTENTION, (be) => {
          const Q = tensor(be, [B, T, NH, HD], q), K = tensor(be, [B, T, NKV, HD], k), V = tensor(be, [B, T, NKV, HD], v);
          const S = tensor(be, [B, T], seg);
          const out = be.alloc([B, T, NH, HD], 'f32', 'scratch'), lse = be.alloc([B, NH, T], 'f32', 'scratch');
          const dq = be.alloc([B, T, NH, HD], 'f32', 'scratch'), dk = be.alloc([B, T, NKV, HD], 'f32', 'scratch'), dv = be.alloc([B, T, NKV, HD], 'f32', 'scratch');
          be.attentionForward(out, lse, Q, K, V, null, B, T, T, T, NH, NKV, HD, S);
          be.attentionBackward(dq, dk, dv, tensor(be, [B, T, NH, HD], dout), out, lse, Q, K, V, null, B, T, NH, NKV, HD, S);
          return [out, lse, dq, dk, dv];
        });
      });
    }

    test('attention with packed segments against a KV cache', async (t) => {
      const cu = cuda(t);
      if (!cu) return;
      const { B, Tq, Tk, Tkv, NH, NKV, HD, lens } = SEGMENT_DECODE;
      const q = randn(B * Tq * NH * HD), k = randn(B * Tkv * NKV * HD), v = randn(B * Tkv * NKV * HD), seg = segmentIds(Tkv, lens);
      await same(cu, 'decode attention with segments', ATTENTION, (be) => {
        const out = be.alloc([B, Tq, NH, HD], 'f32', 'scratch'), lse = be.alloc([B, NH, Tq], 'f32', 'scratch');
        be.attentionForward(out, lse, tensor(be, [B, Tq, NH, HD], q), tensor(be, [B, Tkv, NKV, HD], k), tensor(be, [B, Tkv, NKV, HD], v),
          null, B, Tq, Tk, Tkv, NH, NKV, HD, tensor(be, [B, Tkv], seg));
        return [out, lse];
      });
    });

    for (const { B, Tq, Tk, Tkv, NH, NKV, HD, pads } of DECODE_SHAPES) {
      test(`attention against a KV cache: B ${B}, Tq ${Tq}, Tk ${Tk}, Tkv ${Tkv}, NH ${NH}, NKV ${NKV}, HD ${HD}`, async (t) => {
        const cu = cuda(t);
        if (!cu) return;
        const q = randn(B * Tq * NH * HD), k = randn(B * Tkv * NKV * HD), v = randn(B * Tkv * NKV * HD);
        const mask = paddingMask(B, Tkv, pads);
        await same(cu, 'decode attention', ATTENTION, (be) => {
          const out = be.alloc([B, Tq, NH, HD], 'f32', 'scratch'), lse = be.alloc([B, NH, Tq], 'f32', 'scratch');
          be.attentionForward(out, lse, tensor(be, [B, Tq, NH, HD], q), tensor(be, [B, Tkv, NKV, HD], k), tensor(be, [B, Tkv, NKV, HD], v),
            tensor(be, [B, Tkv], mask), B, Tq, Tk, Tkv, NH, NKV, HD);
          return [out, lse];
        });
      });
    }

    test('cross-entropy: ignored rows, separate and aliased gradients', async (t) => {
      const cu = cuda(t);
      if (!cu) return;
      for (const [N, V] of [[7, 1000], [3, 5001]] as const) {
        const logits = randn(N * V, 3), targets = Int32Array.from({ length: N }, (_, i) => (i % 3 === 1 ? -100 : rng.int(V)));
        await same(cu, `cross-entropy ${N}x${V}`, F32, (be) => {
          const x = tensor(be, [N, V], logits), tg = tensor(be, [N], targets);
          const losses = be.alloc([N], 'f32', 'scratch'), dlogits = be.alloc([N, V], 'f32', 'scratch'), evalLosses = be.alloc([N], 'f32', 'scratch');
          be.crossEntropy(evalLosses, null, x, tg, N, V, 0);
          be.crossEntropy(losses, dlogits, x, tg, N, V, 0.25);
          be.crossEntropy(losses, x, x, tg, N, V, 0.25);
          return [evalLosses, losses, dlogits, x];
        });
      }
    });

    test('sumSquares accumulates; AdamW steps', async (t) => {
      const cu = cuda(t);
      if (!cu) return;
      const big = randn(1_000_003), small = randn(1);
      await same(cu, 'sumSquares', F32, (be) => {
        const out = tensor(be, [1], Float32Array.of(1.5));
        be.sumSquares(out, tensor(be, [1_000_003], big));
        be.sumSquares(out, tensor(be, [1], small));
        return [out];
      });
      const n = 4099, p = randn(n), g1 = randn(n, 1e-3), g2 = randn(n, 1e-3);
      await same(cu, 'adamw', EXACT, (be) => {
        const param = tensor(be, [n], p), m = be.alloc([n], 'f32', 'scratch'), v = be.alloc([n], 'f32', 'scratch');
        be.fill(m, 0);
        be.fill(v, 0);
        be.adamw(param, tensor(be, [n], g1), m, v, 3e-4, 0.9, 0.999, 1e-8, 0.01, 1);
        be.adamw(param, tensor(be, [n], g2), m, v, 3e-4, 0.9, 0.999, 1e-8, 0.01, 2);
        return [param, m, v];
      });
    });
  });
}
