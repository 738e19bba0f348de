// bf16 weights packed for inference (Backend.packWeight; native/cpu/src/kernels/matvec-packed.cpp) against the js
// backend on the same weight unpacked (the spec: the bf16 values widened, products summed in float32). Widths that
// leave an odd last column (C odd) and a narrower or padded last tile (OC not a multiple of 48); 1 to 70 input rows
// (the kernel's 8-row groups, every remainder, and past the row matvec's 64); bf16 inputs (the packed kernel) and
// float32 ones (read as a frozen weight, element by element); bias or not; float32 and bf16 outputs. Tolerance as
// cpu-parity.test.ts: |cpu - js| <= 1e-5 * (|js| + max|js|) per element, plus one bf16 step (up to 2^-7 |js|) for a
// bf16 output, where another summation order may round the other way. Only on CPUs with AVX512_BF16: elsewhere
// packWeight must give null, which is checked instead.

import assert from 'node:assert/strict';
import { after, test, type TestContext } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import type { CpuBackend } from '../../src/backends/native/cpu.ts';
import type { Backend } from '../../src/engine/backend.ts';
import type { DType } from '../../src/engine/dtype.ts';
import { Rng } from '../../src/engine/random.ts';
import type { Tensor } from '../../src/engine/tensor.ts';
import { cpuBackend, needCpu, uniformValues } from '../helpers/cpu-backend.ts';

const RTOL = 1e-5;
const js = new JsBackend();
const rng = new Rng(4811);
after(() => cpuBackend?.setComputeDtype('f32'));

// [C, OC]: last tiles of 32, 16, 48, 48 (8 rows padded), 16 and 16 (15 padded) rows
const SHAPES = [[37, 29], [256, 100], [64, 48], [50, 40], [300, 97], [16, 1]] as const;
const ROWS = [1, 2, 3, 5, 8, 9, 13, 17, 70];

function close(got: Float32Array, want: Float32Array, what: string, outDtype: DType = 'f32'): void {
  let maxAbs = 0;
  for (const v of want) maxAbs = Math.max(maxAbs, Math.abs(v));
  const step = outDtype === 'bf16' ? 2 ** -7 : 0; // a bf16 step is 2^-8 to 2^-7 of the value
  for (let i = 0; i < want.length; i++) {
    const tol = RTOL * (Math.abs(want[i]!) + maxAbs) + step * Math.abs(want[i]!);
    if (!(Math.abs(got[i]! - want[i]!) <= tol)) assert.fail(`${what} [${i}]: cpu ${got[i]} vs js ${want[i]}`);
  }
}

/** The cpu backend on a CPU that packs (AVX512_BF16), or null after marking the test skipped. */
function needPacking(t: TestContext): CpuBackend | null {
  const c = needCpu(t);
  if (c && c.addon.info().bf16Dot) return c;
  if (c) t.skip('needs AVX512_BF16 (the first test checks that packWeight gives null without it)');
  return null;
}

/** The weight as bf16 on `be`, packed when `pack` (asserting that the backend packed it). */
function bf16Weight(be: Backend, w: Float32Array, OC: number, C: number, pack: boolean): Tensor {
  const dense = be.alloc([OC, C], 'bf16', 'scratch');
  be.upload(dense, w);
  if (!pack) return dense;
  const packed = be.packWeight(dense);
  assert.ok(packed, 'packWeight packs a bf16 weight on an AVX512_BF16 CPU');
  assert.equal(packed.dtype, 'bf16-packed');
  assert.deepEqual(packed.shape, [OC, C]);
  return packed;
}

test('packed bf16 weights: matmulForward matches js on the unpacked weight at any row count, input and output dtype', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  if (!c.addon.info().bf16Dot) {
    const w = c.alloc([4, 4], 'bf16', 'scratch');
    assert.equal(c.packWeight(w), null, 'no AVX512_BF16: nothing is packed');
    c.freeArena('scratch');
    t.skip('this CPU has no AVX512_BF16: packWeight gives null, checked');
    return;
  }
  for (const [C, OC] of SHAPES) {
    const w = uniformValues(rng, OC * C, 0.3), b = uniformValues(rng, OC);
    for (const N of ROWS) {
      const x = uniformValues(rng, N * C);
      for (const [inDtype, outDtype, withBias] of [['bf16', 'f32', true], ['bf16', 'bf16', false], ['f32', 'f32', true], ['f32', 'bf16', false]] as const) {
        const run = async (be: Backend, pack: boolean): Promise<Float32Array> => {
          const inp = be.alloc([N, C], inDtype, 'scratch'), out = be.alloc([N, OC], outDtype, 'scratch');
          const bias = be.alloc([OC], 'f32', 'scratch');
          be.upload(inp, x), be.upload(bias, b), be.fill(out, NaN);
          be.matmulForward(out, inp, bf16Weight(be, w, OC, C, pack), withBias ? bias : null, N, C, OC);
          return (await be.download(out)) as Float32Array;
        };
        close(await run(c, true), await run(js, false), `C=${C} OC=${OC} N=${N} in ${inDtype} out ${outDtype} bias=${withBias}`, outDtype);
        js.freeArena('scratch');
        c.freeArena('scratch');
      }
    }
  }
});

test('packed bf16 weights: a row gives the same bits alone as among 13 rows (the batch does not change its sums)', async (t) => {
  const c = needPacking(t);
  if (!c) return;
  const [C, OC, N] = [300, 97, 13];
  const w = bf16Weight(c, uniformValues(rng, OC * C, 0.3), OC, C, true), x = uniformValues(rng, N * C);
  const run = async (rows: Float32Array, n: number): Promise<Float32Array> => {
    const inp = c.alloc([n, C], 'bf16', 'scratch'), out = c.alloc([n, OC], 'f32', 'scratch');
    c.upload(inp, rows);
    c.matmulForward(out, inp, w, null, n, C, OC);
    return (await c.download(out)) as Float32Array;
  };
  const together = await run(x, N);
  for (let r = 0; r < N; r++) assert.deepEqual(await run(x.subarray(r * C, (r + 1) * C), 1), together.subarray(r * OC, (r + 1) * OC), `row ${r}`);
  c.freeArena('scratch');
});

test('packed bf16 weights: the bf16 compute mode rounds a float32 input as the dense weight does', async (t) => {
  const c = needPacking(t);
  if (!c) return;
  const [C, OC] = [300, 97];
  const w = uniformValues(rng, OC * C, 0.3);
  for (const N of [3, 40]) {
    const x = uniformValues(rng, N * C);
    const run = async (pack: boolean): Promise<Float32Array> => {
      const inp = c.alloc([N, C], 'f32', 'scratch'), out = c.alloc([N, OC], 'f32', 'scratch');
      c.upload(inp, x);
      c.matmulForward(out, inp, bf16Weight(c, w, OC, C, pack), null, N, C, OC);
      return (await c.download(out)) as Float32Array;
    };
    c.setComputeDtype('bf16');
    close(await run(true), await run(false), `compute bf16, N=${N}`);
    c.setComputeDtype('f32');
    c.freeArena('scratch');
  }
});

test('packed bf16 weights: download gives the exact values, dinp matches js, and other uses are refused', async (t) => {
  const c = needPacking(t);
  if (!c) return;
  const [C, OC, N] = [37, 29, 5];
  const w = uniformValues(rng, OC * C, 0.3), dy = uniformValues(rng, N * OC);
  const packed = bf16Weight(c, w, OC, C, true), dense = bf16Weight(c, w, OC, C, false);
  assert.deepEqual(await c.download(packed), await c.download(dense), 'download unpacks every element exactly');

  const dinp = async (be: Backend, weight: Tensor): Promise<Float32Array> => {
    const d = be.alloc([N, C], 'f32', 'scratch'), dout = be.alloc([N, OC], 'f32', 'scratch');
    be.upload(dout, dy);
    be.matmulBackward(d, null, null, dout, dout, weight, N, C, OC);
    return (await be.download(d)) as Float32Array;
  };
  close(await dinp(c, packed), await dinp(js, bf16Weight(js, w, OC, C, false)), 'matmulBackward dinp');

  const scratch = c.alloc([N, C], 'f32', 'scratch'), rstd = c.alloc([N], 'f32', 'scratch');
  assert.throws(() => c.view(packed, 0, [C]), /view: t is a packed bf16 weight \[29, 37\]; only matmulForward/);
  assert.throws(() => c.upload(packed, w), /upload: t is a packed bf16 weight/);
  assert.throws(() => c.rmsnormForward(scratch, rstd, scratch, packed, N, C, 1e-5), /rmsnormForward: weight is a packed bf16 weight/);
  const dw = c.alloc([OC, C], 'f32', 'scratch');
  assert.throws(() => c.matmulBackward(null, dw, null, scratch, scratch, packed, N, C, OC), /the bf16-packed weight \[29, 37\] is packed and frozen, so it has no dweight/);
  assert.throws(() => c.packWeight(packed), /packWeight: w is a packed bf16 weight/);
  assert.equal(c.packWeight(c.alloc([OC, C], 'f32', 'scratch')), null, 'only bf16 weights are packed');
  c.freeArena('scratch');
  js.freeArena('scratch');
});
