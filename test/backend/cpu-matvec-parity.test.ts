// The cpu backend's decode matvec (native/cpu/src/kernels/matvec.cpp: linear forward for N <= 16 rows) in each SIMD
// copy this CPU can run (avx512, avx2, generic, via setMatvecIsa) against the js backend (the spec): f32/bf16/f16
// weights, 1 to 16 input rows (groups of four and the rest), widths that leave masked tails (C not a multiple of 16) and odd weight rows (OC not a
// multiple of 4), bias or not. Tolerance as cpu-parity.test.ts: |cpu - js| <= 1e-5 * (|js| + max|js|) per element.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import type { Backend } from '../../src/engine/backend.ts';
import { Rng } from '../../src/engine/random.ts';
import { cpuBackend, needCpu, uniformValues } from '../helpers/cpu-backend.ts';

const RTOL = 1e-5;
const js = new JsBackend();
const rng = new Rng(919);
const initialIsa = cpuBackend?.addon.info().matvecIsa;
after(() => {
  if (cpuBackend && initialIsa) cpuBackend.addon.setMatvecIsa(initialIsa);
});

const SHAPES = [[37, 29], [16, 8], [1000, 301], [2100, 5], [15, 3], [768, 64]] as const; // [C, OC]

test('matvec (N <= 16 rows) in every SIMD copy matches js: f32/bf16/f16 weights, bias or not', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  const isas = (['avx512', 'avx2', 'generic'] as const).filter((isa) => c.addon.setMatvecIsa(isa) === isa);
  assert.ok(isas.includes('generic'), 'the portable copy always runs');
  for (const [C, OC] of SHAPES) {
    for (const dtype of ['f32', 'bf16', 'f16'] as const) {
      for (const N of [1, 2, 3, 4, 7, 16]) {
        const x = uniformValues(rng, N * C), w = uniformValues(rng, OC * C, 0.3), b = uniformValues(rng, OC);
        for (const withBias of [false, true]) {
          const run = async (be: Backend): Promise<Float32Array> => {
            const inp = be.alloc([N, C], 'f32', 'scratch'), weight = be.alloc([OC, C], dtype, 'scratch'), out = be.alloc([N, OC], 'f32', 'scratch');
            const bias = be.alloc([OC], 'f32', 'scratch');
            be.upload(inp, x), be.upload(weight, w), be.upload(bias, b), be.fill(out, NaN);
            be.matmulForward(out, inp, weight, withBias ? bias : null, N, C, OC);
            return (await be.download(out)) as Float32Array;
          };
          const want = await run(js);
          let maxAbs = 0;
          for (const v of want) maxAbs = Math.max(maxAbs, Math.abs(v));
          for (const isa of isas) {
            c.addon.setMatvecIsa(isa);
            const got = await run(c);
            for (let i = 0; i < want.length; i++) {
              if (!(Math.abs(got[i]! - want[i]!) <= RTOL * (Math.abs(want[i]!) + maxAbs))) {
                assert.fail(`${isa} ${dtype} N=${N} C=${C} OC=${OC} bias=${withBias} [${i}]: cpu ${got[i]} vs js ${want[i]}`);
              }
            }
          }
          js.freeArena('scratch');
          c.freeArena('scratch');
        }
      }
    }
  }
});
