// The bf16 compute mode (setComputeDtype('bf16'), --compute_dtype bf16) on the cpu backend against the js backend in
// the same mode (the spec, engine/backend.ts): a bf16 weight's products (matmulForward's out, matmulBackward's dinp)
// take their input rounded to bf16 and sum in float32; dweight/dbias and f32 weights are unchanged. Shapes cover the
// decode matvec (vdpbf16ps up to 64 rows for bf16 weights; 8 x 256 x 700 splits its rows between two threads at
// row 360, with blocks of 3 cut short at the end), the AVX512_BF16 GEMM (odd K for its k pairs, N past its 32-column tiles, f32 and bf16
// activations). Tolerance as cpu-parity.test.ts (1e-5 relative with a floor of 1e-5 max|js|): both sides multiply the
// same bf16 values exactly and differ only in float32 summation order. Skips where the CPU has no AVX512_BF16.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import type { Backend } from '../../src/engine/backend.ts';
import type { DType } from '../../src/engine/dtype.ts';
import { Rng } from '../../src/engine/random.ts';
import { cpuBackend, needCpu, uniformValues } from '../helpers/cpu-backend.ts';

const RTOL = 1e-5;
const rng = new Rng(1616);
after(() => cpuBackend?.setComputeDtype('f32'));

function expectClose(got: Float32Array, want: Float32Array, what: string): void {
  let maxAbs = 0;
  for (const v of want) maxAbs = Math.max(maxAbs, Math.abs(v));
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= RTOL * (Math.abs(want[i]!) + maxAbs))) assert.fail(`${what}[${i}]: cpu ${got[i]} vs js ${want[i]}`);
  }
}

/** Forward, then backward (dinp, dweight, dbias) of one linear layer on `be`; every result downloaded. */
async function linear(be: Backend, N: number, C: number, OC: number, wDtype: DType, actDtype: DType, data: Float32Array[]): Promise<Float32Array[]> {
  const [x, w, b, g] = data;
  const t = (shape: number[], dtype: DType, v?: Float32Array) => {
    const u = be.alloc(shape, dtype, 'scratch');
    if (v) be.upload(u, v);
    else be.fill(u, 0);
    return u;
  };
  const inp = t([N, C], actDtype, x), weight = t([OC, C], wDtype, w), bias = t([OC], 'f32', b), dout = t([N, OC], actDtype, g);
  const out = t([N, OC], 'f32'), dinp = t([N, C], 'f32'), dw = t([OC, C], 'f32'), db = t([OC], 'f32');
  be.matmulForward(out, inp, weight, bias, N, C, OC);
  be.matmulBackward(dinp, dw, db, dout, inp, weight, N, C, OC);
  const results = [];
  for (const r of [out, dinp, dw, db]) results.push((await be.download(r)) as Float32Array);
  be.freeArena('scratch');
  return results;
}

test('bf16 compute: bf16 weights multiply in bf16 on cpu as on js; f32 weights are unchanged', async (t) => {
  const cpu = needCpu(t);
  if (!cpu) return;
  if (!cpu.addon.info().bf16Dot) return t.skip('this CPU has no AVX512_BF16');
  const js = new JsBackend();
  const names = ['out', 'dinp', 'dweight', 'dbias'];
  for (const [N, C, OC] of [[1, 37, 29], [3, 300, 64], [13, 37, 29], [16, 65, 8], [8, 256, 700], [67, 301, 131], [200, 768, 100]] as const) {
    for (const wDtype of ['bf16', 'f32'] as const) {
      for (const actDtype of ['f32', 'bf16'] as const) {
        const data = [uniformValues(rng, N * C), uniformValues(rng, OC * C, 0.3), uniformValues(rng, OC), uniformValues(rng, N * OC)];
        js.setComputeDtype('bf16');
        cpu.setComputeDtype('bf16');
        const want = await linear(js, N, C, OC, wDtype, actDtype, data);
        const got = await linear(cpu, N, C, OC, wDtype, actDtype, data);
        const tag = `${wDtype} weight, ${actDtype} activations, N=${N} C=${C} OC=${OC}`;
        names.forEach((n, i) => expectClose(got[i]!, want[i]!, `${n} ${tag}`));
        js.setComputeDtype('f32');
        const f32 = await linear(js, N, C, OC, wDtype, actDtype, data);
        const changes = (i: number) => f32[i]!.some((v, j) => v !== want[i]![j]);
        // the mode rounds float32 inputs of bf16 weights' products only: dweight and dbias never change
        assert.equal(changes(0), wDtype === 'bf16' && actDtype === 'f32', `out changes with the mode: ${tag}`);
        assert.equal(changes(1), wDtype === 'bf16' && actDtype === 'f32', `dinp changes with the mode: ${tag}`);
        assert.ok(!changes(2) && !changes(3), `dweight and dbias do not change with the mode: ${tag}`);
      }
    }
  }
  cpu.setComputeDtype('f32');
  assert.equal(cpu.addon.info().computeDtype, 'f32');
});

test('setComputeDtype refuses an unknown dtype', (t) => {
  const cpu = needCpu(t);
  if (!cpu) return;
  assert.throws(() => cpu.addon.setComputeDtype('f16' as never), /setComputeDtype: dtype must be 'f32' or 'bf16', not 'f16'/);
});
