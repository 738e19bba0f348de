// Linear layers on quantized frozen weights (engine/quantized.ts): the cpu backend against the js backend (the spec)
// for NF4/FP4 (blocksize 64 and 128, with and without double quantization, values in float32 or rounded to bf16/f16)
// and LLM.int8 (threshold 6 with outlier columns, and 0), forward and dinp, at awkward sizes (C odd and not a multiple of the block, OC odd) and row counts
// that take each path: N = 1 and 3 (matvec), 5 and 150 (GEMM, split over threads; the int8 kernel in row blocks).
// Also the js reference against itself on the dequantized weights, LLM.int8's steps on a hand-sized case, the
// model's linear layer with a LoRA branch on a quantized base, and the errors for what a quantized weight refuses.

// Each cpu run repeats in every variant: default threads and more than CPUs, both GEMM kernels, and each SIMD copy
// of the quantized kernels this CPU has. Tolerance as cpu-parity.test.ts: |cpu - js| <= 1e-5 * (|js| + max|js|);
// dequantized weights (download) and the int8 forward must match exactly. Test weights come from a plain quantizer
// here: parity needs valid parts, not bitsandbytes' exact codes.

import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { after, test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import type { QuantIsa } from '../../src/backends/native/cpu-addon.ts';
import { CpuBackend } from '../../src/backends/native/cpu.ts';
import { CudaBackend } from '../../src/backends/native/cuda.ts';
import type { Backend } from '../../src/engine/backend.ts';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/engine/dtype.ts';
import { FP4_CODE, NF4_CODE, type Quantized4bit, type QuantizedInt8, type QuantizedWeight } from '../../src/engine/quantized.ts';
import { Rng } from '../../src/engine/random.ts';
import { linearBackward, linearForward } from '../../src/model/linear.ts';
import { cpuBackend, needCpu, uniformValues } from '../helpers/cpu-backend.ts';
import { gemmChoiceOf, setGemmChoice } from '../../src/backends/native/cpu-gemm-timing.ts';

const RTOL = 1e-5;
const js = new JsBackend();
const cpu = cpuBackend;
const rng = new Rng(4242);
const fr = Math.fround;

interface Variant {
  threads: number;
  gemm: 'openblas' | 'own';
  isa: QuantIsa;
}

const initial = cpu?.addon.info();
const initialGemm = cpu ? gemmChoiceOf(cpu.addon) : null;
const VARIANTS: Variant[] = [];
if (cpu && initial) {
  const isas = (['avx512', 'avx2', 'generic'] as const).filter((isa) => cpu.addon.setQuantIsa(isa) === isa);
  for (const threads of new Set([initial.threads, 2 * availableParallelism() + 3])) {
    for (const gemm of ['openblas', 'own'] as const) {
      if (cpu.addon.setGemm(gemm) !== gemm) continue;
      for (const isa of isas) VARIANTS.push({ threads, gemm, isa });
    }
  }
  setGemmChoice(cpu.addon, initialGemm!);
  cpu.addon.setQuantIsa(initial.quantIsa);
}

function use(c: CpuBackend, v: Variant): void {
  if (c.addon.info().threads !== v.threads) c.addon.setThreads(v.threads);
  c.addon.setGemm(v.gemm);
  c.addon.setQuantIsa(v.isa);
}

const variantName = (v: Variant) => `${v.threads} threads, ${v.gemm} GEMM, ${v.isa}`;

after(() => {
  if (cpu && initial) {
    use(cpu, { threads: initial.threads, gemm: 'own', isa: initial.quantIsa });
    setGemmChoice(cpu.addon, initialGemm!);
  }
});

const randomValues = (n: number, scale = 1) => uniformValues(rng, n, scale);

// ---- a plain quantizer for test weights ----
const NF4 = Array.from(NF4_CODE);
const FP4 = Array.from(FP4_CODE);

const nearest = (table: readonly number[], v: number) => table.reduce((best, t, i) => (Math.abs(t - v) < Math.abs(table[best]! - v) ? i : best), 0);

function quantize4(
  w: Float32Array, OC: number, C: number, type: 'nf4' | 'fp4', blocksize: number, doubleQuant: boolean, nestedBlocksize = 256, dtype: Quantized4bit['dtype'] = 'f32',
): Quantized4bit {
  const n = OC * C, blocks = Math.ceil(n / blocksize);
  const absmax = new Float32Array(blocks);
  for (let i = 0; i < n; i++) absmax[Math.floor(i / blocksize)] = Math.max(absmax[Math.floor(i / blocksize)]!, Math.abs(w[i]!));
  const table = type === 'nf4' ? NF4 : FP4;
  const packed = new Uint8Array(Math.ceil(n / 2));
  for (let i = 0; i < n; i++) packed[i >> 1]! |= nearest(table, w[i]! / absmax[Math.floor(i / blocksize)]!) << (i & 1 ? 0 : 4);
  if (!doubleQuant) return { type, shape: [OC, C], blocksize, packed, absmax, dtype };
  const offset = fr(absmax.reduce((a, b) => a + b, 0) / blocks);
  const nestedMap = Float32Array.from({ length: 256 }, (_, i) => -1 + (2 * i) / 255);
  const nestedAbsmax = new Float32Array(Math.ceil(blocks / nestedBlocksize));
  for (let b = 0; b < blocks; b++) nestedAbsmax[Math.floor(b / nestedBlocksize)] = Math.max(nestedAbsmax[Math.floor(b / nestedBlocksize)]!, Math.abs(absmax[b]! - offset));
  const codes = Uint8Array.from(absmax, (a, b) => Math.round(((a - offset) / nestedAbsmax[Math.floor(b / nestedBlocksize)]! + 1) * 127.5));
  return { type, shape: [OC, C], blocksize, packed, absmax: { codes, nestedAbsmax, nestedMap, nestedBlocksize, offset }, dtype };
}

function quantize8(w: Float32Array, OC: number, C: number, threshold: number): QuantizedInt8 {
  const weight = new Int8Array(OC * C), scb = new Float32Array(OC);
  for (let o = 0; o < OC; o++) {
    for (let c = 0; c < C; c++) scb[o] = Math.max(scb[o]!, Math.abs(w[o * C + c]!));
    for (let c = 0; c < C; c++) weight[o * C + c] = Math.round((w[o * C + c]! * 127) / scb[o]!);
  }
  return { type: 'int8', shape: [OC, C], weight, scb, threshold };
}

/** Inputs with outliers for LLM.int8: a few columns get |x| in [6, 10] in one row; row 1 (when N > 2) holds nothing else. */
function int8Input(N: number, C: number): Float32Array {
  const x = randomValues(N * C, 1.5);
  for (let k = 0; k < 5; k++) {
    const n = Math.floor(rng.next() * N), c = Math.floor(rng.next() * C);
    x[n * C + c] = (rng.next() < 0.5 ? -1 : 1) * (6 + 4 * rng.next());
  }
  if (N > 2) {
    x.fill(0, C, 2 * C);
    x[C + 3] = 7;
  }
  return x;
}

// ---- running one case on js and in every cpu variant ----
const upload = (be: Backend, shape: number[], values: Float32Array) => {
  const t = be.alloc(shape, 'f32', 'scratch');
  be.upload(t, values);
  return t;
};

interface Result {
  out: Float32Array;
  dinp: Float32Array;
  weight: Float32Array; // download: dequantized
}

async function runOn(be: Backend, q: QuantizedWeight, x: Float32Array, g: Float32Array, bias: Float32Array | null, N: number): Promise<Result> {
  const [OC, C] = q.shape;
  const w = be.uploadQuantized(q, 'scratch');
  const out = upload(be, [N, OC], new Float32Array(N * OC).fill(NaN));
  const dinp = upload(be, [N, C], new Float32Array(N * C).fill(NaN));
  const b = bias ? upload(be, [OC], bias) : null;
  be.matmulForward(out, upload(be, [N, C], x), w, b, N, C, OC);
  be.matmulBackward(dinp, null, null, upload(be, [N, OC], g), upload(be, [N, C], x), w, N, C, OC);
  const r = { out: (await be.download(out)) as Float32Array, dinp: (await be.download(dinp)) as Float32Array, weight: (await be.download(w)) as Float32Array };
  be.freeArena('scratch');
  return r;
}

/** max |got - want| / (|want| + max|want|) over the elements; fails past `rtol` (0: bit for bit). */
function compare(got: Float32Array, want: Float32Array, rtol: number, where: string): number {
  assert.equal(got.length, want.length, `${where}: length`);
  let maxAbs = 0;
  for (const v of want) maxAbs = Math.max(maxAbs, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!, v = got[i]!;
    if (!Number.isFinite(w) || !Number.isFinite(v)) assert.fail(`${where}[${i}]: cpu ${v} vs js ${w}`);
    if (rtol === 0) {
      if (!Object.is(v, w)) assert.fail(`${where}[${i}]: cpu ${v} vs js ${w} (must match exactly)`);
      continue;
    }
    const e = Math.abs(v - w) / (Math.abs(w) + maxAbs || 1);
    worst = Math.max(worst, e);
    if (!(e <= rtol)) assert.fail(`${where}[${i}]: cpu ${v} vs js ${w} (max |js| ${maxAbs})`);
  }
  return worst;
}

const SHAPES: readonly (readonly [number, number])[] = [[7, 100], [301, 1001]]; // (OC, C)
const ROWS = [1, 3, 5, 150];

async function parity(c: CpuBackend, q: QuantizedWeight, name: string, makeInput: (N: number, C: number) => Float32Array): Promise<void> {
  const [OC, C] = q.shape;
  const worst = { out: 0, dinp: 0 };
  for (const N of ROWS) {
    const x = makeInput(N, C), g = randomValues(N * OC);
    const bias = N === 3 ? randomValues(OC) : null;
    const want = await runOn(js, q, x, g, bias, N);
    for (const v of VARIANTS) {
      use(c, v);
      const got = await runOn(c, q, x, g, bias, N);
      const where = `${name} [${OC}, ${C}] N ${N} (${variantName(v)})`;
      compare(got.weight, want.weight, 0, `${where} dequantized weight`);
      worst.out = Math.max(worst.out, compare(got.out, want.out, q.type === 'int8' ? 0 : RTOL, `${where} forward`));
      worst.dinp = Math.max(worst.dinp, compare(got.dinp, want.dinp, RTOL, `${where} dinp`));
    }
  }
  console.log(`# ${name} [${OC}, ${C}]: max error forward ${worst.out.toExponential(2)}, dinp ${worst.dinp.toExponential(2)} (relative to |js| + max|js|)`);
}

for (const type of ['nf4', 'fp4'] as const) {
  for (const blocksize of [64, 128]) {
    for (const doubleQuant of [false, true]) {
      const name = `${type} blocksize ${blocksize}${doubleQuant ? ' double-quantized' : ''}`;
      test(`${name}: forward and dinp, cpu = js`, async (t) => {
        const c = needCpu(t);
        if (!c) return;
        for (const [OC, C] of SHAPES) await parity(c, quantize4(randomValues(OC * C, 0.05), OC, C, type, blocksize, doubleQuant), name, (N, C) => randomValues(N * C));
      });
    }
  }
}

test('4-bit block sizes that are not powers of two (bitsandbytes writes none, the format allows them): cpu = js', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  const [OC, C] = [41, 333];
  await parity(c, quantize4(randomValues(OC * C, 0.05), OC, C, 'nf4', 48, true, 100), 'nf4 blocksize 48 nested 100', (N, C) => randomValues(N * C));
});

for (const dtype of ['bf16', 'f16'] as const) {
  test(`4-bit values rounded to ${dtype} (bitsandbytes' quant_state dtype): forward and dinp, cpu = js`, async (t) => {
    const c = needCpu(t);
    if (!c) return;
    const [OC, C] = SHAPES[1]!;
    for (const [type, blocksize, doubleQuant] of [['nf4', 64, true], ['fp4', 128, false]] as const) {
      const name = `${type} blocksize ${blocksize}${doubleQuant ? ' double-quantized' : ''} ${dtype}`;
      await parity(c, quantize4(randomValues(OC * C, 0.05), OC, C, type, blocksize, doubleQuant, 256, dtype), name, (N, C) => randomValues(N * C));
    }
    // |values| down to 1e-6: float16's subnormals (below 6.1e-5)
    await parity(c, quantize4(randomValues(7 * 100, 1e-4), 7, 100, 'nf4', 64, false, 256, dtype), `nf4 tiny ${dtype}`, (N, C) => randomValues(N * C));
  });
}

for (const threshold of [6, 0]) {
  test(`int8 threshold ${threshold}: forward bit for bit, dinp, cpu = js`, async (t) => {
    const c = needCpu(t);
    if (!c) return;
    for (const [OC, C] of SHAPES) await parity(c, quantize8(randomValues(OC * C, 0.05), OC, C, threshold), `int8 threshold ${threshold}`, int8Input);
  });
}

// ---- the js reference ----
/** out and dinp through a dense f32 weight holding `w`. */
async function dense(w: Float32Array, OC: number, C: number, x: Float32Array, g: Float32Array, N: number): Promise<{ out: Float32Array; dinp: Float32Array }> {
  const out = js.alloc([N, OC], 'f32', 'scratch'), dinp = js.alloc([N, C], 'f32', 'scratch');
  const wt = upload(js, [OC, C], w), xt = upload(js, [N, C], x);
  js.matmulForward(out, xt, wt, null, N, C, OC);
  js.matmulBackward(dinp, null, null, upload(js, [N, OC], g), xt, wt, N, C, OC);
  const r = { out: (await js.download(out)) as Float32Array, dinp: (await js.download(dinp)) as Float32Array };
  js.freeArena('scratch');
  return r;
}

test('js: a 4-bit weight computes as the dense float32 weight it dequantizes to, bit for bit', async () => {
  const [OC, C, N] = [9, 77, 6];
  const rounded = { f32: fr, bf16: (v: number) => bf16ToF32(f32ToBf16(v)), f16: (v: number) => f16ToF32(f32ToF16(v)) };
  for (const [doubleQuant, dtype] of [[false, 'f32'], [true, 'f32'], [true, 'bf16'], [false, 'f16']] as const) {
    const q = quantize4(randomValues(OC * C, 0.1), OC, C, 'nf4', 64, doubleQuant, 256, dtype);
    const x = randomValues(N * C), g = randomValues(N * OC);
    const got = await runOn(js, q, x, g, null, N);
    const want = await dense(got.weight, OC, C, x, g, N);
    compare(got.out, want.out, 0, 'forward');
    compare(got.dinp, want.dinp, 0, 'dinp');
    // the dequantized values: code * absmax in float32, block by block over the flattened weight, rounded to dtype
    const code = (i: number) => (q.packed[i >> 1]! >> (i & 1 ? 0 : 4)) & 15;
    const absmax = (b: number) => {
      const a = q.absmax;
      return a instanceof Float32Array ? a[b]! : fr(fr(a.nestedMap[a.codes[b]!]! * a.nestedAbsmax[Math.floor(b / a.nestedBlocksize)]!) + a.offset);
    };
    for (const i of [0, 1, 63, 64, 76, 77, 78, OC * C - 1]) assert.equal(got.weight[i], rounded[dtype](fr(NF4[code(i)]!) * absmax(Math.floor(i / 64))), `${dtype} element ${i}`);
  }
});

test('js: LLM.int8 forward, step by step as bitsandbytes (outlier columns, row absmax without outliers, fp16 input)', async () => {
  // Column 1 holds an outlier (10 in row 0); row 1's 5 in that column is no outlier but still goes through in float.
  const x = Float32Array.of(1, 10, -2.0001, 0.3, 5, 4);
  const q: QuantizedInt8 = { type: 'int8', shape: [2, 3], weight: Int8Array.of(127, -64, 1, -3, 90, -127), scb: Float32Array.of(2, 0.5), threshold: 6 };
  const half = (v: number) => f16ToF32(f32ToF16(v));
  const rne = (v: number) => {
    const r = Math.round(v);
    return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
  };
  const want = new Float32Array(4);
  for (let n = 0; n < 2; n++) {
    const row = [0, 1, 2].map((c) => half(x[n * 3 + c]!));
    const absmax = n === 0 ? Math.abs(row[2]!) : Math.max(Math.abs(row[0]!), Math.abs(row[1]!), Math.abs(row[2]!));
    const scale = fr(fr(1 / absmax) * 127);
    const codes = row.map((v, c) => (c === 1 ? 0 : rne(fr(v * scale))));
    for (let o = 0; o < 2; o++) {
      const w = q.weight.subarray(o * 3, o * 3 + 3);
      const sum = codes[0]! * w[0]! + codes[2]! * w[2]!;
      let v = fr(fr(sum * fr(absmax * q.scb[o]!)) * fr(6.200124e-5));
      v = fr(v + fr(x[n * 3 + 1]! * fr(fr(w[1]! * q.scb[o]!) * fr(1 / 127))));
      want[n * 2 + o] = v;
    }
  }
  const got = await runOn(js, q, x, new Float32Array(4), null, 2);
  compare(got.out, want, 0, 'LLM.int8 forward');
  // Outliers change the result: the same weight with threshold 0 quantizes every column.
  const plain = await runOn(js, { ...q, threshold: 0 }, x, new Float32Array(4), null, 2);
  assert.notDeepEqual(plain.out, got.out);
});

test('js: int8 dinp is dout @ (w * (scb / 127)), as bitsandbytes\' backward', async () => {
  const [OC, C, N] = [5, 33, 4];
  const q = quantize8(randomValues(OC * C), OC, C, 6);
  const w = Float32Array.from(q.weight, (v, i) => fr(v * fr(q.scb[Math.floor(i / C)]! * fr(1 / 127))));
  const x = randomValues(N * C), g = randomValues(N * OC);
  const got = await runOn(js, q, x, g, null, N);
  compare(got.dinp, (await dense(w, OC, C, x, g, N)).dinp, 0, 'dinp');
});

// ---- the model's linear layer ----
test('linear layer with a LoRA branch on a quantized base: the model code runs unchanged, cpu = js', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  const [OC, C, N, r] = [37, 70, 9, 4];
  const base = randomValues(OC * C, 0.1), A = randomValues(r * C, 0.1), B = randomValues(OC * r, 0.1);
  const x = randomValues(N * C), dy = randomValues(N * OC);
  for (const q of [quantize4(base, OC, C, 'nf4', 64, true), quantize8(base, OC, C, 6)]) {
    const results: Float32Array[][] = [];
    for (const be of [js, c] as Backend[]) {
      const pair = { A: upload(be, [r, C], A), B: upload(be, [OC, r], B), dA: upload(be, [r, C], new Float32Array(r * C)), dB: upload(be, [OC, r], new Float32Array(OC * r)), inFeatures: C, outFeatures: OC, dora: null };
      const params = { weight: be.uploadQuantized(q, 'scratch'), bias: null, dWeight: null, dBias: null };
      const lora = { pair, scaling: 2, dropout: 0.1, seed: 7 };
      const s = { t: be.alloc([N, r], 'f32', 'scratch'), xd: be.alloc([N, C], 'f32', 'scratch'), y: be.alloc([N, OC], 'f32', 'scratch'), dt: be.alloc([N, r], 'f32', 'scratch'), z: null };
      const out = be.alloc([N, OC], 'f32', 'scratch'), dx = be.alloc([N, C], 'f32', 'scratch'), xt = upload(be, [N, C], x);
      linearForward(be, out, xt, params, N, C, OC, lora, s);
      linearBackward(be, dx, upload(be, [N, OC], dy), xt, params, N, C, OC, lora, s);
      results.push(await Promise.all([out, dx, pair.dA, pair.dB].map(async (t) => (await be.download(t)) as Float32Array)));
      be.freeArena('scratch');
    }
    ['out', 'dx', 'dA', 'dB'].forEach((what, i) => compare(results[1]![i]!, results[0]![i]!, RTOL, `${q.type} ${what}`));
  }
});

// ---- what a quantized weight refuses ----
test('a quantized weight has no dweight, views, uploads or elementwise ops; free releases it', async (t) => {
  const q = quantize4(randomValues(4 * 64, 0.1), 4, 64, 'fp4', 64, false);
  const backends: Backend[] = [js];
  if (cpu) backends.push(cpu);
  else needCpu(t);
  for (const be of backends) {
    const w = be.uploadQuantized(q, 'scratch');
    assert.equal(w.dtype, 'fp4');
    assert.deepEqual(w.shape, [4, 64]);
    const g = upload(be, [2, 4], randomValues(8)), x = upload(be, [2, 64], randomValues(128)), dw = be.alloc([4, 64], 'f32', 'scratch');
    assert.throws(() => be.matmulBackward(null, dw, null, g, x, w, 2, 64, 4), /full fine-tuning needs 16\/32-bit base weights/, be.name);
    assert.throws(() => be.view(w, 0, [64]), /quantized/, be.name);
    assert.throws(() => be.upload(w, new Float32Array(256)), /quantized/, be.name);
    assert.throws(() => be.fill(w, 0), /quantized/, be.name);
    assert.throws(() => be.copy(dw, w), /quantized/, be.name);
    assert.throws(() => be.matmulForward(be.alloc([2, 3], 'f32', 'scratch'), x, w, null, 2, 64, 3), /\[4, 64\]/, be.name);
    be.free(w);
    assert.throws(() => be.matmulForward(be.alloc([2, 4], 'f32', 'scratch'), x, w, null, 2, 64, 4), /after it was freed/, be.name);
    be.freeArena('scratch');
  }
  assert.throws(() => js.uploadQuantized({ ...q, packed: q.packed.subarray(1) }, 'scratch'), /packed has 127 bytes, expected 128/);
  assert.throws(() => js.uploadQuantized({ ...q, dtype: 'i32' as 'f32' }, 'scratch'), /dtype must be f32, bf16 or f16, got i32/);
});

test('the cuda backend refuses a quantized weight and names the cpu backend', () => {
  const cuda = Object.create(CudaBackend.prototype) as CudaBackend; // no GPU needed: it refuses before any device call
  assert.throws(() => cuda.uploadQuantized(quantize8(randomValues(4), 2, 2, 6), 'weights'), /--backend cpu/);
});
