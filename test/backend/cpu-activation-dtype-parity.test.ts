// Every op that takes activations, with its activation arguments stored as bf16 and as f16 (backend.ts lists
// them), on the cpu backend against the js backend (the spec). Not the f32 parity (cpu-parity.test.ts) and not a
// gradient check. Each case runs with both GEMM kernels (OpenBLAS when linked, and the addon's own).
//
// Tolerance: both backends read the same 16-bit inputs and compute in float32, whose results may differ in their
// last bits (cpu-parity's 1e-5 relative, floored by the tensor's largest value); rounding that to 16 bits moves
// it by at most one 16-bit ulp. So |cpu - js| <= ulp16(|js|) + 1e-5 * (|js| + max|js|) per element, where
// ulp16(x) is the 16-bit format's spacing at x (bf16: 2^(e-7), f16: 2^(e-10), subnormal floor). Dropout, copies
// and the NaN log-sum-exp of fully masked rows match exactly.

import assert from 'node:assert/strict';
import { after, afterEach, test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import { CpuBackend } from '../../src/backends/native/cpu.ts';
import type { Backend } from '../../src/engine/backend.ts';
import type { DType } from '../../src/engine/dtype.ts';
import { Rng } from '../../src/engine/random.ts';
import { quantize4bit } from '../../src/formats/bnb-4bit.ts';
import { quantizeInt8Rows } from '../../src/formats/bnb-int8.ts';
import type { Tensor } from '../../src/engine/tensor.ts';
import { ATTENTION_SHAPES, MODEL_SHAPES, paddingMask } from '../helpers/parity-shapes.ts';
import { cpuBackend, needCpu, uniformValues } from '../helpers/cpu-backend.ts';
import { gemmChoiceOf, setGemmChoice } from '../../src/backends/native/cpu-gemm-timing.ts';

type Half = 'bf16' | 'f16';
const HALVES: readonly Half[] = ['bf16', 'f16'];
const RTOL = 1e-5;
const js = new JsBackend();
const cpu = cpuBackend;
const rng = new Rng(77);
const initialGemm = cpu ? gemmChoiceOf(cpu.addon) : null;
const GEMMS = cpu ? (['openblas', 'own'] as const).filter((g) => cpu.addon.setGemm(g) === g) : [];
if (cpu && initialGemm) setGemmChoice(cpu.addon, initialGemm);

afterEach(() => {
  js.freeArena('scratch');
  cpu?.freeArena('scratch');
});
after(() => {
  if (cpu && initialGemm) setGemmChoice(cpu.addon, initialGemm);
});

/** One tensor on js and on cpu once per GEMM kernel. */
interface Pair {
  js: Tensor;
  cpu: Tensor[];
}

const randomValues = (n: number, scale = 1) => uniformValues(rng, n, scale);

function pair(c: CpuBackend, shape: number[], dtype: DType, values: Float32Array | Int32Array): Pair {
  const p = { js: js.alloc(shape, dtype, 'scratch'), cpu: GEMMS.map(() => c.alloc(shape, dtype, 'scratch')) };
  js.upload(p.js, values);
  for (const t of p.cpu) c.upload(t, values);
  return p;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const randn = (c: CpuBackend, shape: number[], dtype: DType, scale = 1) => pair(c, shape, dtype, randomValues(numel(shape), scale));
/** An output pair filled with NaN, so an element the op leaves unwritten fails. */
const output = (c: CpuBackend, shape: number[], dtype: DType) => pair(c, shape, dtype, new Float32Array(numel(shape)).fill(NaN));

/** Gives the cpu copies js's values, so the next op starts from identical inputs. */
async function same(p: Pair): Promise<void> {
  const v = await js.download(p.js);
  for (const t of p.cpu) cpu!.upload(t, v);
}

/** Runs `op` on js, then on cpu with each GEMM kernel. */
function both(c: CpuBackend, op: (be: Backend, s: (p: Pair) => Tensor) => void): void {
  op(js, (p) => p.js);
  GEMMS.forEach((g, i) => {
    c.addon.setGemm(g);
    op(c, (p) => p.cpu[i]!);
  });
}

/** The spacing of 16-bit floats of `dtype` at |x|. */
function ulp16(x: number, dtype: Half): number {
  const e = Math.max(Math.floor(Math.log2(Math.abs(x) || 2 ** -126)), dtype === 'bf16' ? -126 : -14);
  return 2 ** (e - (dtype === 'bf16' ? 7 : 10));
}

/** Worst |cpu - js| over 16-bit outputs as a fraction of the tolerance, and in ulps where |js| >= max|js| / 64. */
const worst: Record<Half, { share: number; ulps: number }> = { bf16: { share: 0, ulps: 0 }, f16: { share: 0, ulps: 0 } };

/** Compares a pair; `half` is the dtype whose rounding the outputs carry (f32 outputs: RTOL only). */
async function expectClose(p: Pair, what: string, half: Half | null, exact = false): Promise<void> {
  const want = await js.download(p.js);
  let maxAbs = 0;
  for (const v of want) if (Number.isFinite(v)) maxAbs = Math.max(maxAbs, Math.abs(v));
  for (const [k, t] of p.cpu.entries()) {
    const got = await cpu!.download(t);
    const where = `${what} (${GEMMS[k]} GEMM)`;
    for (let i = 0; i < want.length; i++) {
      const w = want[i]!, g = got[i]!;
      if (exact || !Number.isFinite(w)) {
        if (!Object.is(g, w)) assert.equal(g, w, `${where}[${i}]: cpu ${g} vs js ${w}`);
        continue;
      }
      const ulp = half ? ulp16(w, half) : 0, tol = ulp + RTOL * (Math.abs(w) + maxAbs);
      if (half) {
        worst[half].share = Math.max(worst[half].share, Math.abs(g - w) / tol);
        if (Math.abs(w) >= maxAbs / 64) worst[half].ulps = Math.max(worst[half].ulps, Math.abs(g - w) / ulp);
      }
      if (!(Math.abs(g - w) <= tol)) assert.fail(`${where}[${i}]: cpu ${g} vs js ${w} (max |js| ${maxAbs})`);
    }
  }
}

after(() => {
  for (const h of HALVES) console.log(`# ${h}: worst |cpu - js| ${worst[h].share.toFixed(3)} of the tolerance, ${worst[h].ulps} ulps where |js| >= max/64`);
});

const LAYER = MODEL_SHAPES[1]!; // tinyllama widths: N*C = 2^20, so pooled ops split into chunks

for (const h of HALVES) {
  test(`${h} activations: add, axpy, scale, dropout, scaleColumns, copyTime`, async (t) => {
    const c = needCpu(t);
    if (!c) return;
    for (const n of [13, LAYER.B * LAYER.T * LAYER.C + 5]) {
      const a = randn(c, [n], h), b = randn(c, [n], h), f = randn(c, [n], 'f32');
      both(c, (be, s) => be.add(s(a), s(a), s(b)));
      await expectClose(a, `add ${h} n=${n}`, h);
      await same(a);
      both(c, (be, s) => be.axpy(s(a), s(f), -0.37));
      await expectClose(a, `axpy ${h} += f32 n=${n}`, h);
      await same(a);
      both(c, (be, s) => be.axpy(s(f), s(b), 0.5));
      await expectClose(f, `axpy f32 += ${h} n=${n}`, null);
      both(c, (be, s) => be.scale(s(b), 1.7));
      await expectClose(b, `scale ${h} n=${n}`, h);
      const out = output(c, [n], h);
      both(c, (be, s) => be.dropout(s(out), s(a), 0.1, 4242));
      await expectClose(out, `dropout ${h} n=${n}`, h, true);
    }
    const [N, OC] = [LAYER.B * LAYER.T, LAYER.C];
    const x = randn(c, [N, OC], h), scale = randn(c, [OC], 'f32'), bias = randn(c, [OC], 'bf16');
    both(c, (be, s) => be.scaleColumns(s(x), s(x), s(scale), s(bias), N, OC));
    await expectClose(x, `scaleColumns ${h} in place`, h);
    const src = randn(c, [2, 9, 6], h), dst = randn(c, [2, 12, 6], h);
    both(c, (be, s) => be.copyTime(s(dst), s(src), 2, 6, 12, 3, 9, 1, 7));
    await expectClose(dst, `copyTime ${h}`, h, true);
  });

  test(`${h} activations: embedding, RMSNorm, rope, SwiGLU forward and backward`, async (t) => {
    const c = needCpu(t);
    if (!c) return;
    for (const { N, C, V } of [{ N: 37, C: 70, V: 50 }, { N: LAYER.B * LAYER.T, C: LAYER.C, V: 1000 }]) {
      const ids = pair(c, [N], 'i32', Int32Array.from({ length: N }, (_, i) => (i * 7919) % V));
      const table = randn(c, [V, C], 'bf16');
      const emb = output(c, [N, C], h);
      both(c, (be, s) => be.embeddingForward(s(emb), s(ids), s(table), N, C));
      await expectClose(emb, `embeddingForward ${h} ${N}x${C}`, h);
      const dtable = randn(c, [V, C], 'f32'), dout = randn(c, [N, C], h);
      both(c, (be, s) => be.embeddingBackward(s(dtable), s(dout), s(ids), N, C));
      await expectClose(dtable, `embeddingBackward dout ${h}`, null);

      const inp = randn(c, [N, C], h, 3), w = randn(c, [C], 'bf16'), rstd = output(c, [N], 'f32'), out = output(c, [N, C], h);
      both(c, (be, s) => be.rmsnormForward(s(out), s(rstd), s(inp), s(w), N, C, 1e-6));
      await expectClose(out, `rmsnormForward ${h}`, h);
      await expectClose(rstd, `rmsnormForward rstd (${h} inp)`, null);
      await same(rstd);
      const dinp = output(c, [N, C], h), dw = randn(c, [C], 'f32');
      both(c, (be, s) => be.rmsnormBackward(s(dinp), s(dw), s(dout), s(inp), s(w), s(rstd), N, C));
      await expectClose(dinp, `rmsnormBackward dinp ${h}`, h);
      await expectClose(dw, `rmsnormBackward dweight (${h} inputs)`, null);

      const n = N * C;
      const gate = randn(c, [n], h, 2), up = randn(c, [n], h), sw = output(c, [n], h);
      both(c, (be, s) => be.swigluForward(s(sw), s(gate), s(up), n));
      await expectClose(sw, `swigluForward ${h}`, h);
      const dgate = output(c, [n], h), dup = output(c, [n], h), dsw = randn(c, [n], h);
      both(c, (be, s) => be.swigluBackward(s(dgate), s(dup), s(dsw), s(gate), s(up), n));
      await expectClose(dgate, `swigluBackward dgate ${h}`, h);
      await expectClose(dup, `swigluBackward dup ${h}`, h);
    }
    const { B, T, NH, HD } = LAYER;
    const x = randn(c, [B, T, NH, HD], h), cos = randn(c, [T, HD / 2], 'f32'), sin = randn(c, [T, HD / 2], 'f32');
    for (const inverse of [false, true]) {
      both(c, (be, s) => be.rope(s(x), s(cos), s(sin), B, T, NH, HD, inverse));
      await expectClose(x, `rope ${h} inverse=${inverse}`, h);
      await same(x);
    }
  });

  test(`${h} activations: matmul forward and backward (GEMM, matvec, bias, 16-bit weights)`, async (t) => {
    const c = needCpu(t);
    if (!c) return;
    // awkward sizes, matvecs (N <= 16: 3 rows, 13 = groups of four and one, 16; a bf16 weight's up to 64: 37) with
    // masked column tails, one past the GEMMs' 512-deep panels. A bf16 weight times bf16 activations runs in vdpbf16ps
    // where the CPU has it (matvec-bf16.cpp, gemm-bf16.cpp): exact products too, so the same tolerance holds.
    for (const [N, C, OC] of [[37, 70, 45], [3, 130, 77], [13, 97, 30], [16, 64, 9], [300, 600, 520]] as const) {
      for (const wdt of ['f32', 'bf16'] as const) {
        const tag = `${h} ${N}x${C}x${OC} ${wdt} weight`;
        const inp = randn(c, [N, C], h), w = randn(c, [OC, C], wdt, 0.1), bias = randn(c, [OC], wdt);
        const out = output(c, [N, OC], h);
        both(c, (be, s) => be.matmulForward(s(out), s(inp), s(w), s(bias), N, C, OC));
        await expectClose(out, `matmulForward ${tag}`, h);
        const out32 = output(c, [N, OC], 'f32');
        both(c, (be, s) => be.matmulForward(s(out32), s(inp), s(w), null, N, C, OC));
        await expectClose(out32, `matmulForward f32 out, ${tag}`, null);
        const dout = randn(c, [N, OC], h), dinp = output(c, [N, C], h), dw = randn(c, [OC, C], 'f32'), db = randn(c, [OC], 'f32');
        both(c, (be, s) => be.matmulBackward(s(dinp), s(dw), s(db), s(dout), s(inp), s(w), N, C, OC));
        await expectClose(dinp, `matmulBackward dinp ${tag}`, h);
        await expectClose(dw, `matmulBackward dweight (${tag})`, null);
        await expectClose(db, `matmulBackward dbias (${tag})`, null);
      }
    }
  });

  test(`${h} activations: matmul with quantized weights (nf4 + double quant, int8; GEMM and matvec)`, async (t) => {
    const c = needCpu(t);
    if (!c) return;
    for (const [N, C, OC] of [[3, 128, 96], [70, 256, 160]] as const) {
      const wv = randomValues(OC * C, 0.1);
      for (const q of [quantize4bit(wv, [OC, C], 'nf4', 64, true), quantizeInt8Rows(wv, [OC, C], 6)]) {
        const tag = `${h} ${N}x${C}x${OC} ${q.type} weight`;
        const w = { js: js.uploadQuantized(q, 'scratch'), cpu: GEMMS.map(() => c.uploadQuantized(q, 'scratch')) };
        const inp = randn(c, [N, C], h), out = output(c, [N, OC], h);
        both(c, (be, s) => be.matmulForward(s(out), s(inp), s(w), null, N, C, OC));
        await expectClose(out, `matmulForward ${tag}`, h);
        const dout = randn(c, [N, OC], h), dinp = output(c, [N, C], h);
        both(c, (be, s) => be.matmulBackward(s(dinp), null, null, s(dout), s(inp), s(w), N, C, OC));
        await expectClose(dinp, `matmulBackward dinp ${tag}`, h);
      }
    }
  });

  for (const sh of ATTENTION_SHAPES.slice(0, 4)) {
    const { B, T, NH, NKV, HD, pads, holes } = sh;
    test(`${h} activations: attention forward and backward B=${B} T=${T} NH=${NH} NKV=${NKV} HD=${HD} pads=[${pads}]`, async (t) => {
      const c = needCpu(t);
      if (!c) return;
      const mask = pads.length || holes.length ? pair(c, [B, T], 'i32', paddingMask(B, T, pads, holes)) : null;
      const q = randn(c, [B, T, NH, HD], h), k = randn(c, [B, T, NKV, HD], h), v = randn(c, [B, T, NKV, HD], h);
      const out = output(c, [B, T, NH, HD], h), lse = output(c, [B, NH, T], 'f32');
      both(c, (be, s) => be.attentionForward(s(out), s(lse), s(q), s(k), s(v), mask && s(mask), B, T, T, T, NH, NKV, HD));
      await expectClose(out, `attentionForward out ${h}`, h);
      await expectClose(lse, `attentionForward lse (${h} inputs)`, null);
      await same(out);
      await same(lse);
      const dout = randn(c, [B, T, NH, HD], h);
      const dq = output(c, [B, T, NH, HD], h), dk = output(c, [B, T, NKV, HD], h), dv = output(c, [B, T, NKV, HD], h);
      both(c, (be, s) => be.attentionBackward(s(dq), s(dk), s(dv), s(dout), s(out), s(lse), s(q), s(k), s(v), mask && s(mask), B, T, NH, NKV, HD));
      await expectClose(dq, `attentionBackward dq ${h}`, h);
      await expectClose(dk, `attentionBackward dk ${h}`, h);
      await expectClose(dv, `attentionBackward dv ${h}`, h);
    });
  }
}

test('16-bit activations where the contract keeps f32 are refused', (t) => {
  const c = needCpu(t);
  if (!c) return;
  const h = c.alloc([4, 8], 'bf16', 'scratch'), ids = c.alloc([4], 'i32', 'scratch'), f = c.alloc([4], 'f32', 'scratch');
  assert.throws(() => c.rmsnormForward(h, h, h, f, 4, 1, 1e-6), /rstd is bf16, expected f32/);
  assert.throws(() => c.crossEntropy(f, null, h, ids, 4, 8, 1), /logits is bf16, expected f32/);
  assert.throws(() => c.embeddingBackward(h, h, ids, 4, 8), /dtable is bf16, expected f32/);
});
