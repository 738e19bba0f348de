// Benchmark: the cpu backend's linear layers on quantized weights (NF4 with float32 values or rounded to bf16 / f16
// as a quant_state dtype asks, NF4 double-quantized, LLM.int8) against f32 and bf16 weights of the same shape:
// decode (N = 1, the matvec path), forward and dinp at N rows (GEMM path).
// Prints the best ms per call of repeated runs (on a shared machine the least disturbed one) and the weight's bytes;
// random weights, since speed does not depend on the values.
//   node --import tsx bench/cpu-quant.ts [--oc 4096] [--c 4096] [--rows 256] [--json out/bench/cpu-quant.json]

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { loadCpuAddon } from '../src/backends/native/cpu-addon.ts';
import { CpuBackend } from '../src/backends/native/cpu.ts';
import type { QuantizedWeight } from '../src/engine/quantized.ts';
import { Rng } from '../src/engine/random.ts';
import type { Tensor } from '../src/engine/tensor.ts';
import { flag } from './flags.ts';

const OC = Number(flag('oc', '4096')), C = Number(flag('c', '4096')), ROWS = Number(flag('rows', '256'));
const jsonPath = process.argv.includes('--json') ? resolve(flag('json', 'out/bench/cpu-quant.json')) : null;

const addon = loadCpuAddon();
if ('unavailable' in addon) throw new Error(`the cpu backend is not available: ${addon.unavailable}`);
const be = new CpuBackend(addon);
const rng = new Rng(1);
const random = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (rng.next() - 0.5) * scale);
const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rng.next() * 256));

function weight(kind: string): { w: Tensor; bytes: number } {
  const n = OC * C;
  if (kind === 'f32' || kind === 'bf16') {
    const w = be.alloc([OC, C], kind, 'weights');
    be.upload(w, random(n, 0.1));
    return { w, bytes: n * (kind === 'f32' ? 4 : 2) };
  }
  let q: QuantizedWeight;
  if (kind === 'int8') {
    q = { type: 'int8', shape: [OC, C], weight: new Int8Array(bytes(n).buffer), scb: random(OC, 0.2).map(Math.abs), threshold: 6 };
    return { w: be.uploadQuantized(q, 'weights'), bytes: n + 4 * OC };
  }
  const blocks = Math.ceil(n / 64), nested = kind === 'nf4-dq';
  const absmax = !nested ? random(blocks, 0.2).map(Math.abs)
    : { codes: bytes(blocks), nestedAbsmax: random(Math.ceil(blocks / 256)).map(Math.abs), nestedMap: random(256, 2).sort(), nestedBlocksize: 256, offset: 0.05 };
  const dtype = kind === 'nf4-bf16' || nested ? 'bf16' : kind === 'nf4-f16' ? 'f16' : 'f32';
  q = { type: 'nf4', shape: [OC, C], blocksize: 64, packed: bytes(Math.ceil(n / 2)), absmax, dtype };
  return { w: be.uploadQuantized(q, 'weights'), bytes: n / 2 + (!nested ? 4 * blocks : blocks + 4 * Math.ceil(blocks / 256) + 1024) };
}

/** The fastest of repeated calls of `fn` in ms (at least 5 calls, and at least ~1 s in all). */
function time(fn: () => void): number {
  fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 5 || (performance.now() - start < 1000 && times.length < 200)) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return Math.min(...times);
}

const x1 = be.alloc([1, C], 'f32', 'activations'), xN = be.alloc([ROWS, C], 'f32', 'activations');
be.upload(x1, random(C, 2));
be.upload(xN, random(ROWS * C, 2));
const y1 = be.alloc([1, OC], 'f32', 'activations'), yN = be.alloc([ROWS, OC], 'f32', 'activations');
const gN = be.alloc([ROWS, OC], 'f32', 'activations'), dxN = be.alloc([ROWS, C], 'f32', 'activations');
be.upload(gN, random(ROWS * OC));

console.log(`cpu backend: ${be.describe()}, quantized kernels ${addon.info().quantIsa}; weight [${OC}, ${C}], ${ROWS} rows`);
const rows: Record<string, string | number>[] = [];
for (const kind of ['f32', 'bf16', 'nf4', 'nf4-bf16', 'nf4-f16', 'nf4-dq', 'int8']) {
  const { w, bytes: size } = weight(kind);
  const decode = time(() => be.matmulForward(y1, x1, w, null, 1, C, OC));
  const forward = time(() => be.matmulForward(yN, xN, w, null, ROWS, C, OC));
  const dinp = time(() => be.matmulBackward(dxN, null, null, gN, xN, w, ROWS, C, OC));
  const gflop = (2 * ROWS * C * OC) / 1e9;
  rows.push({
    weight: kind, MiB: +(size / 2 ** 20).toFixed(1), 'decode ms': +decode.toFixed(2), 'decode GB/s': +(size / decode / 1e6).toFixed(1),
    [`forward ${ROWS} ms`]: +forward.toFixed(1), 'forward GFLOP/s': +(gflop / forward * 1e3).toFixed(0),
    [`dinp ${ROWS} ms`]: +dinp.toFixed(1), 'dinp GFLOP/s': +(gflop / dinp * 1e3).toFixed(0),
  });
  be.free(w);
}
console.table(rows);
if (jsonPath) {
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, JSON.stringify({ describe: be.describe(), quantIsa: addon.info().quantIsa, OC, C, rows: ROWS, results: rows }, null, 2));
}
