// The cpu addon's host quantizers (backends/native/cpu-quantize.ts) against the TypeScript specs (formats/bnb-4bit.ts'
// quantizeBlocks, bnb-int8.ts' quantizeRows): byte for byte on random weights of awkward sizes (odd counts, short last
// blocks, zero rows, values on code midpoints and on int8 rounding ties, huge, tiny and subnormal values), NF4/FP4 at
// blocksizes 64 and 128, at the default thread count and more threads than CPUs; and exact on bitsandbytes' fixtures.
// Non-finite weights, as the spec gives them: a block (row) holding a NaN gets absmax (scb) NaN and every code the
// lowest value's (int8 0); an inf absmax scales finite values to 0 and inf to NaN. NaN bits may differ: any NaN matches.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { after, test, type TestContext } from 'node:test';
import { loadCpuAddon } from '../../src/backends/native/cpu-addon.ts';
import { nativeQuantizers, type NativeQuantizers } from '../../src/backends/native/cpu-quantize.ts';
import { code4bit, type NestedAbsmax } from '../../src/engine/quantized.ts';
import { Rng } from '../../src/engine/random.ts';
import { codeBounds, quantize4bit, quantizeBlocks } from '../../src/formats/bnb-4bit.ts';
import { quantizeInt8Rows, quantizeRows } from '../../src/formats/bnb-int8.ts';
import type { HostData } from '../../src/formats/host-tensor.ts';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { needShared, sharedPath } from '../helpers/shared.ts';

const loaded = loadCpuAddon();
const addon = 'unavailable' in loaded ? null : loaded;
const native = nativeQuantizers();
const initialThreads = addon?.info().threads ?? 0;
const THREADS = [...new Set([initialThreads, 2, 2 * availableParallelism() + 3])];
const rng = new Rng(777);

after(() => addon?.setThreads(initialThreads));

function needNative(t: TestContext): NativeQuantizers | null {
  if (native) return native;
  const reason = `the cpu addon's quantizers are not available: ${'unavailable' in loaded ? loaded.unavailable : 'an old build'}`;
  if (process.env.CI === 'true') throw new Error(reason);
  t.skip(reason);
  return null;
}

/** Same bits in every element; float32 NaN matches any NaN. */
function assertSame(actual: HostData, expected: HostData, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const bits = (d: HostData) => (d instanceof Float32Array ? new Uint32Array(d.buffer, d.byteOffset, d.length) : d);
  const a = bits(actual), e = bits(expected);
  for (let i = 0; i < e.length; i++) {
    if (a[i] === e[i] || (Number.isNaN(actual[i]) && Number.isNaN(expected[i]))) continue;
    assert.fail(`${what}: element ${i} is ${actual[i]} (native) but ${expected[i]} (spec)`);
  }
}

/** Uniform values with, by position, whole zero stretches, huge, tiny and float32-subnormal ones. */
function awkward(n: number, scale: number): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng.next() - 0.5, kind = Math.floor(i / 300) % 6;
    v[i] = kind === 1 ? 0 : kind === 2 ? u * 3e38 : kind === 3 ? u * 1e-6 : kind === 4 ? u * 1e-40 : u * scale;
  }
  return v;
}

/** A block of `blocksize` values: 1 (so the block scales by exactly 1), then each code midpoint and its neighbours. */
function midpoints(type: 'nf4' | 'fp4', blocksize: number): Float32Array {
  const { bounds } = codeBounds(code4bit(type));
  const v = new Float32Array(blocksize);
  v[0] = 1;
  bounds.forEach((b, i) => v.set([b, -b, Math.fround(b * (1 + 2 ** -23)), Math.fround(b * (1 - 2 ** -24))], 1 + 4 * i));
  return v;
}

const SHAPES: [number, number][] = [[1, 1], [3, 37], [7, 129], [64, 65], [517, 1031]];

test('4-bit blocks: native == spec byte for byte, NF4/FP4, blocksizes 64 and 128, threads', (t) => {
  const q = needNative(t);
  if (!q) return;
  for (const threads of THREADS) {
    addon!.setThreads(threads);
    for (const type of ['nf4', 'fp4'] as const) {
      for (const blocksize of [64, 128]) {
        const table = codeBounds(code4bit(type));
        const cases: [string, Float32Array][] = SHAPES.map(([o, c]) => [`random [${o}, ${c}]`, awkward(o * c, 0.1)]);
        const ties = midpoints(type, blocksize);
        cases.push(['midpoints, whole block', ties], ['midpoints, short block', Float32Array.of(...ties, ...ties.subarray(0, 61))]);
        cases.push(['non-finite', Float32Array.of(...ties, ...ties.slice(0, blocksize).fill(Infinity, 3, 4), NaN, ...ties.subarray(1, 40), -Infinity, 0.5)]);
        for (const [name, w] of cases) {
          const a = quantizeBlocks(w, table, blocksize), b = q.blocks4bit(w, table, blocksize);
          const what = `${type} blocksize ${blocksize} ${name} (${threads} threads)`;
          assertSame(b.packed, a.packed, `${what} packed`);
          assertSame(b.absmax, a.absmax, `${what} absmax`);
        }
      }
    }
  }
});

test('4-bit non-finite blocks: NaN codes as the lowest value, inf scales the rest to 0', (t) => {
  const q = needNative(t);
  if (!q) return;
  const w = new Float32Array(128).fill(0.25);
  w[5] = NaN;
  w[64] = Infinity;
  const { packed, absmax } = q.blocks4bit(w, codeBounds(code4bit('nf4')), 64);
  assert.ok(Number.isNaN(absmax[0]) && absmax[1] === Infinity);
  assert.ok(packed.subarray(0, 32).every((b) => b === 0x00), 'a NaN block: every code 0 (nf4 -1)');
  assert.equal(packed[32], 0x07, 'inf × 0 is NaN (code 0); 0.25 × 0 is 0 (code 7)');
  assert.ok(packed.subarray(33, 64).every((b) => b === 0x77));
});

test('int8 rows: native == spec byte for byte, ties, zero and non-finite rows, threads', (t) => {
  const q = needNative(t);
  if (!q) return;
  for (const threads of THREADS) {
    addon!.setThreads(threads);
    for (const [OC, C] of SHAPES) {
      const w = awkward(OC * C, 3);
      if (OC > 3) {
        w.fill(0, C, 2 * C); // a zero row
        w.set(Float32Array.from({ length: Math.min(C, 254) }, (_, i) => (i % 127) - 63 + 0.5).fill(127, 0, 1), 2 * C); // ties at scale 1
        w[3 * C + 1] = NaN;
        w[4 * C + 2] = Infinity;
        w[5 * C + 3] = 1e5; // inf as float16
      }
      const a = quantizeRows(w, OC, C), b = q.int8Rows(w, OC, C);
      assertSame(b.weight, a.weight, `int8 [${OC}, ${C}] weight (${threads} threads)`);
      assertSame(b.scb, a.scb, `int8 [${OC}, ${C}] scb (${threads} threads)`);
    }
  }
  const w = Float32Array.of(1, 2, 0.5, NaN, 3, Infinity, 1e5, -7);
  const { weight, scb } = q.int8Rows(w, 4, 2);
  assert.deepEqual([...weight], [64, 127, 0, 0, 0, 0, 0, 0], 'a NaN or inf row (1e5 is inf in float16) is all zeros');
  assert.ok(scb[0] === 2 && Number.isNaN(scb[1]) && scb[2] === Infinity && scb[3] === Infinity);
});

test('the native quantizers reproduce bitsandbytes\' fixtures exactly', (t) => {
  const q = needNative(t);
  if (!q || !needShared(t, 'fixtures', 'quant')) return;
  const tensors = readSafetensors(sharedPath('fixtures', 'quant', 'ops_golden.safetensors'));
  const tensor = (name: string) => {
    const h = tensors.get(name);
    assert.ok(h, `ops_golden.safetensors has no ${name}`);
    return h.data;
  };
  const cases: { name: string; weight: string; shape: [number, number]; quant_type: 'nf4' | 'fp4'; blocksize: number; double_quant: boolean }[] =
    JSON.parse(readFileSync(sharedPath('fixtures', 'quant', 'ops_golden.json'), 'utf8')).cases;
  assert.equal(cases.length, 24);
  for (const c of cases) {
    const r = quantize4bit(tensor(c.weight) as Float32Array, c.shape, c.quant_type, c.blocksize, c.double_quant, 'f32', q.blocks4bit);
    assertSame(r.packed, tensor(`${c.name}.packed`), `${c.name}.packed`);
    const nested = r.absmax as NestedAbsmax;
    assertSame(c.double_quant ? nested.codes : (r.absmax as Float32Array), tensor(`${c.name}.absmax`), `${c.name}.absmax`);
    if (c.double_quant) assertSame(nested.nestedAbsmax, tensor(`${c.name}.nested_absmax`), `${c.name}.nested_absmax`);
  }
  const int8 = quantizeInt8Rows(tensor('int8.w') as Float32Array, [48, 64], 6, q.int8Rows);
  assertSame(int8.weight, tensor('int8.CB'), 'int8.CB');
  assertSame(int8.scb, tensor('int8.SCB'), 'int8.SCB');
});
