// DoRA's linear layer (model/linear.ts) on the js backend against central differences of L = sum(R * y), with
// the row norm n = ||W + s B A|| held constant as PEFT detaches it: the forward against PEFT's formula written
// out in float64 here, and dx, dA, dB, dm against the differences, with dropout 0 and 0.3 and a bias.
// For a fixed n, y is linear in each of x, A, B and m, so central differences are exact but for float32
// rounding: tolerance 1e-4 of the largest gradient (forward: 1e-5 of the largest output).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsBackend } from '../../../src/backends/js/index.ts';
import { dropoutKeep, Rng } from '../../../src/engine/random.ts';
import type { Tensor } from '../../../src/engine/tensor.ts';
import { linearBackward, linearForward, type LoraRuntime } from '../../../src/model/linear.ts';

const [N, C, OC, r, s] = [5, 6, 4, 2, 1.5];
const rng = new Rng(11);
const rand = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
const host = { x: rand(N * C), W: rand(OC * C), bias: rand(OC), A: rand(r * C), B: rand(OC * r), m: Float32Array.from(rand(OC), (v) => 1 + v / 2), R: rand(N * OC) };

/** n per output row of W + s B A, float64. */
const norms = Float64Array.from({ length: OC }, (_, o) => {
  let sq = 0;
  for (let c = 0; c < C; c++) {
    let ba = 0;
    for (let k = 0; k < r; k++) ba += host.B[o * r + k]! * host.A[k * C + c]!;
    const v = host.W[o * C + c]! + s * ba;
    sq += v * v;
  }
  return Math.sqrt(sq);
});

/** PEFT's DoRA output in float64: x W^T + b + (g - 1) xd W^T + g s xd A^T B^T, with g = m / n. */
function reference(p: number, seed: number): Float64Array {
  const y = new Float64Array(N * OC);
  const xd = Float64Array.from(host.x, (v, i) => (p === 0 ? v : dropoutKeep(seed, i, p) ? v / (1 - p) : 0));
  for (let i = 0; i < N; i++) {
    for (let o = 0; o < OC; o++) {
      const g = host.m[o]! / norms[o]!;
      let base = host.bias[o]!, u = 0, lora = 0;
      for (let c = 0; c < C; c++) {
        base += host.x[i * C + c]! * host.W[o * C + c]!;
        u += xd[i * C + c]! * host.W[o * C + c]!;
        let ba = 0;
        for (let k = 0; k < r; k++) ba += host.B[o * r + k]! * host.A[k * C + c]!;
        lora += xd[i * C + c]! * s * ba;
      }
      y[i * OC + o] = base + (g - 1) * u + g * lora;
    }
  }
  return y;
}

function run(p: number, seed: number, values = host) {
  const be = new JsBackend();
  const up = (shape: number[], v: Float32Array) => {
    const t = be.alloc(shape, 'f32', 'scratch');
    be.upload(t, v);
    return t;
  };
  const zeros = (...shape: number[]) => up(shape, new Float32Array(shape.reduce((a, b) => a * b, 1)));
  const dora = {
    magnitude: up([OC], values.m), dMagnitude: zeros(OC), baseNormSq: null,
    scale: up([OC], Float32Array.from(norms, (n, o) => values.m[o]! / n)), invNorm: up([OC], Float32Array.from(norms, (n) => 1 / n)),
  };
  const pair = { A: up([r, C], values.A), B: up([OC, r], values.B), dA: zeros(r, C), dB: zeros(OC, r), inFeatures: C, outFeatures: OC, dora };
  const lora: LoraRuntime = { pair, scaling: s, dropout: p, seed };
  const scratch = { t: zeros(N, r), xd: zeros(N, C), y: zeros(N, OC), dt: zeros(N, r), z: zeros(N, OC) };
  const params = { weight: up([OC, C], values.W), bias: up([OC], values.bias), dWeight: null, dBias: null };
  const x = up([N, C], values.x), out = zeros(N, OC), dx = zeros(N, C);
  linearForward(be, out, x, params, N, C, OC, lora, scratch);
  linearBackward(be, dx, up([N, OC], values.R), x, params, N, C, OC, lora, scratch);
  const get = async (t: Tensor) => (await be.download(t)) as Float32Array;
  return (async () => ({ y: await get(out), dx: await get(dx), dA: await get(pair.dA), dB: await get(pair.dB), dm: await get(dora.dMagnitude) }))();
}

const loss = (y: Float32Array) => y.reduce((sum, v, i) => sum + v * host.R[i]!, 0);
const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

for (const p of [0, 0.3]) {
  test(`DoRA linear, dropout ${p}: forward = PEFT's formula, gradients = central differences`, async () => {
    const seed = 1234;
    const got = await run(p, seed);
    const want = reference(p, seed);
    const yScale = maxAbs(want);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got.y[i]! - want[i]!) <= 1e-5 * yScale, `y[${i}]: ${got.y[i]} vs ${want[i]}`);
    const h = 1e-2;
    for (const [name, grad] of [['x', got.dx], ['A', got.dA], ['B', got.dB], ['m', got.dm]] as const) {
      const scale = maxAbs(grad);
      assert.ok(scale > 0, `d${name} is all zero`);
      for (let i = 0; i < grad.length; i++) {
        const moved = (d: number) => {
          const v = host[name].slice();
          v[i]! += d;
          return run(p, seed, { ...host, [name]: v });
        };
        const numeric = (loss((await moved(h)).y) - loss((await moved(-h)).y)) / (2 * h);
        assert.ok(Math.abs(numeric - grad[i]!) <= 1e-4 * scale, `d${name}[${i}]: ${grad[i]} vs central difference ${numeric}`);
      }
    }
  });
}
