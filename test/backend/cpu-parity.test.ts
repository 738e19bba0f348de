// Every op of the cpu backend, forward and backward, against the js backend (the spec) on random inputs of
// awkward sizes and of realistic model widths (test/helpers/parity-shapes.ts). Not a gradient check
// (js-gradcheck.test.ts checks the js backward ops themselves).

// Weights f32, bf16 and f16. Every op runs in each cpu variant: the default thread count and more threads
// than CPUs, each with both GEMM kernels (OpenBLAS when linked, and the addon's own); the model widths make
// every pooled op split into several chunks per thread. Tolerance: |cpu - js| <= 1e-5 * (|js| + max|js|) per
// element, i.e. 1e-5 relative with a floor scaled to the tensor, so sums cancelling to near zero are judged
// against their inputs' magnitude. Integer results, dropout and the NaN log-sum-exp of fully masked rows
// must match exactly.

import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { after, afterEach, test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import { CpuBackend } from '../../src/backends/native/cpu.ts';
import type { Backend } from '../../src/engine/backend.ts';
import type { DType } from '../../src/engine/dtype.ts';
import { Rng } from '../../src/engine/random.ts';
import type { Tensor } from '../../src/engine/tensor.ts';
import { ATTENTION_SHAPES, DECODE_SHAPES, MODEL_SHAPES, SEGMENT_DECODE, SEGMENT_SHAPES, paddingMask, segmentIds } from '../helpers/parity-shapes.ts';
import { cpuBackend, needCpu, uniformValues } from '../helpers/cpu-backend.ts';
import { gemmChoiceOf, setGemmChoice } from '../../src/backends/native/cpu-gemm-timing.ts';

const RTOL = 1e-5;
const js = new JsBackend();
const cpu = cpuBackend;
const rng = new Rng(2024);

/** A thread count and GEMM kernel the cpu backend runs an op in. */
interface Variant {
  threads: number;
  gemm: 'openblas' | 'own';
}

const initial = cpu?.addon.info();
const initialGemm = cpu ? gemmChoiceOf(cpu.addon) : null;
const VARIANTS: Variant[] = [];
if (cpu && initial) {
  // More threads than CPUs (7 on 2 CPUs), odd so chunks do not divide evenly among them.
  for (const threads of new Set([initial.threads, 2 * availableParallelism() + 3])) {
    for (const gemm of ['openblas', 'own'] as const) if (cpu.addon.setGemm(gemm) === gemm) VARIANTS.push({ threads, gemm });
  }
  setGemmChoice(cpu.addon, initialGemm!);
}
let threadsNow = initial?.threads ?? 0;

function use(c: CpuBackend, v: Variant): void {
  if (v.threads !== threadsNow) c.addon.setThreads((threadsNow = v.threads));
  c.addon.setGemm(v.gemm);
}

const variantName = (v: Variant) => `${v.threads} threads, ${v.gemm} GEMM`;

afterEach(() => {
  js.freeArena('scratch');
  cpu?.freeArena('scratch');
});

after(() => {
  if (cpu && initial) {
    cpu.addon.setThreads(initial.threads);
    setGemmChoice(cpu.addon, initialGemm!);
  }
});

/** The same tensor on js and on the cpu backend once per variant (cpu[i] runs in VARIANTS[i]). */
interface Pair {
  js: Tensor;
  cpu: Tensor[];
}

const randomValues = (n: number, scale = 1) => uniformValues(rng, n, scale);

function upload(c: Backend, p: Pair, data: Float32Array | Uint16Array | Int32Array): void {
  js.upload(p.js, data);
  for (const t of p.cpu) c.upload(t, data);
}

function pair(c: Backend, shape: number[], dtype: DType, values?: Float32Array | Int32Array): Pair {
  const p = { js: js.alloc(shape, dtype, 'scratch'), cpu: VARIANTS.map(() => c.alloc(shape, dtype, 'scratch')) };
  const n = p.js.size;
  upload(c, p, values ?? (dtype === 'i32' ? new Int32Array(n) : randomValues(n)));
  return p;
}

const randn = (c: Backend, shape: number[], dtype: DType = 'f32', scale = 1) => pair(c, shape, dtype, randomValues(shape.reduce((a, b) => a * b, 1), scale));
const ints = (c: Backend, values: ArrayLike<number>) => pair(c, [values.length], 'i32', Int32Array.from(values));
/** An f32 pair the op overwrites, filled with NaN (cheaper than random values; an unwritten element fails). */
const output = (c: Backend, shape: number[]) => pair(c, shape, 'f32', new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(NaN));
const viewPair = (c: Backend, p: Pair, offset: number, shape: number[]): Pair => ({ js: js.view(p.js, offset, shape), cpu: p.cpu.map((t) => c.view(t, offset, shape)) });

/** Runs `op` on js, then on cpu in each variant: `side` picks each pair's tensor for that run. */
function both(c: CpuBackend, op: (be: Backend, side: (p: Pair | null) => Tensor) => void): void {
  op(js, (p) => (p ? p.js : (null as unknown as Tensor)));
  VARIANTS.forEach((v, i) => {
    use(c, v);
    op(c, (p) => (p ? p.cpu[i]! : (null as unknown as Tensor)));
  });
}

async function expectClose(c: Backend, p: Pair, what: string, rtol = RTOL): Promise<void> {
  const want = await js.download(p.js);
  let maxAbs = 0;
  for (const v of want) if (Number.isFinite(v)) maxAbs = Math.max(maxAbs, Math.abs(v));
  for (const [k, t] of p.cpu.entries()) {
    const got = await c.download(t);
    const where = `${what} (${variantName(VARIANTS[k]!)})`;
    assert.equal(got.length, want.length, `${where}: length`);
    for (let i = 0; i < want.length; i++) {
      const w = want[i]!, g = got[i]!;
      if (!Number.isFinite(w) || want instanceof Int32Array) {
        if (!Object.is(g, w)) assert.equal(g, w, `${where}[${i}]: cpu ${g} vs js ${w}`);
        continue;
      }
      if (!(Math.abs(g - w) <= rtol * (Math.abs(w) + maxAbs))) assert.fail(`${where}[${i}]: cpu ${g} vs js ${w} (max |js| ${maxAbs})`);
    }
  }
}

test('memory: upload/download in every dtype, views, copy with conversion, fill', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    const p = randn(c, [3, 37], dtype);
    await expectClose(c, p, `upload/download ${dtype}`, 0);
    const half = new Uint16Array(37).map((_, i) => 0x3c00 + i * 97);
    if (dtype !== 'f32') {
      const h = pair(c, [37], dtype);
      upload(c, h, half);
      await expectClose(c, h, `raw bits ${dtype}`, 0);
    }
    const v = viewPair(c, p, 40, [2, 10]);
    await expectClose(c, v, `view ${dtype}`, 0);
    for (const to of ['f32', 'bf16', 'f16'] as const) {
      const d = pair(c, [3, 37], to);
      both(c, (be, s) => be.copy(s(d), s(p)));
      await expectClose(c, d, `copy ${dtype} -> ${to}`, 0);
    }
  }
  const ids = ints(c, [5, -3, 7, 2147483647]);
  await expectClose(c, ids, 'i32 upload', 0);
  const idsCopy = ints(c, [0, 0, 0, 0]);
  both(c, (be, s) => be.copy(s(idsCopy), s(ids)));
  await expectClose(c, idsCopy, 'i32 copy', 0);
  const f = randn(c, [101]);
  both(c, (be, s) => be.fill(be.view(s(f), 10, [50]), -2.5));
  await expectClose(c, f, 'fill f32 view', 0);
  both(c, (be, s) => be.fill(s(idsCopy), 9));
  await expectClose(c, idsCopy, 'fill i32', 0);
  // js fills half tensors with raw bits; the cpu backend stores the value, as backend.ts states.
  const h = c.alloc([5], 'bf16', 'scratch');
  c.fill(h, 1.5);
  assert.deepEqual([...(await c.download(h))], [1.5, 1.5, 1.5, 1.5, 1.5]);
});

test('memory: errors instead of corruption (sizes, dtypes, freed tensors, token ids)', (t) => {
  const c = needCpu(t);
  if (!c) return;
  const a = c.alloc([4, 8], 'f32', 'scratch');
  assert.throws(() => c.upload(a, new Float32Array(3)), /3 values for a tensor of 32/);
  assert.throws(() => c.view(a, 30, [4]), /past the end/);
  const out = c.alloc([4, 9], 'f32', 'scratch');
  assert.throws(() => c.matmulForward(out, a, a, null, 4, 8, 9), /weight has 32 elements, the op needs 72/);
  const ids = c.alloc([2], 'i32', 'scratch');
  c.upload(ids, Int32Array.from([1, 4]));
  assert.throws(() => c.embeddingForward(a, ids, c.alloc([4, 4], 'f32', 'scratch'), 2, 4), /token id 4 at position 1 is outside the vocabulary \(size 4\)/);
  assert.throws(() => c.add(a, a, ids), /b is i32, expected f32/);
  const gone = c.alloc([2], 'f32', 'activations');
  const view = c.view(gone, 0, [1]);
  c.freeArena('activations');
  assert.throws(() => c.fill(view, 0), /used after it was freed/);
});

test('elementwise: add, axpy, scale, copyTime, dropout (bit for bit)', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  for (const n of [13, 200_003]) {
    const a = randn(c, [n]), b = randn(c, [n]);
    both(c, (be, s) => be.add(s(a), s(a), s(b)));
    await expectClose(c, a, `add ${n}`);
    both(c, (be, s) => be.axpy(s(a), s(b), -0.37));
    await expectClose(c, a, `axpy ${n}`);
    both(c, (be, s) => be.scale(s(b), 1.7));
    await expectClose(c, b, `scale ${n}`);
    for (const [p, seed] of [[0.05, 12345], [0.5, 0xdeadbeef]] as const) {
      const inp = randn(c, [n]), out = randn(c, [n]);
      both(c, (be, s) => be.dropout(s(out), s(inp), p, seed));
      await expectClose(c, out, `dropout p=${p} n=${n}`, 0);
    }
  }
  for (const dtype of ['f32', 'bf16', 'i32'] as const) {
    const src = dtype === 'i32' ? pair(c, [2, 4, 5], 'i32', Int32Array.from({ length: 40 }, (_, i) => i * 7 - 3)) : randn(c, [2, 4, 5], dtype);
    const dst = dtype === 'i32' ? pair(c, [2, 7, 5], 'i32') : randn(c, [2, 7, 5], dtype);
    both(c, (be, s) => be.copyTime(s(dst), s(src), 2, 5, 7, 2, 4, 1, 3));
    await expectClose(c, dst, `copyTime ${dtype}`, 0);
  }
});

test('per-output-feature: scaleColumns (f32/bf16/f16 bias, in place) and columnDot', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  for (const [N, OC] of [[7, 13], [300, 2053]]) {
    const scale = randn(c, [OC]);
    for (const dtype of ['f32', 'bf16', 'f16'] as const) {
      const inp = randn(c, [N, OC]), bias = randn(c, [OC], dtype), out = output(c, [N, OC]);
      both(c, (be, s) => be.scaleColumns(s(out), s(inp), s(scale), s(bias), N, OC));
      await expectClose(c, out, `scaleColumns ${N}x${OC} + ${dtype} bias`);
    }
    const x = randn(c, [N, OC]);
    both(c, (be, s) => be.scaleColumns(s(x), s(x), s(scale), null, N, OC));
    await expectClose(c, x, `scaleColumns ${N}x${OC} in place, no bias`);
    const a = randn(c, [N, OC]), b = randn(c, [N, OC]), dm = randn(c, [OC]);
    both(c, (be, s) => be.columnDot(s(dm), s(a), s(b), s(scale), N, OC));
    await expectClose(c, dm, `columnDot ${N}x${OC} (accumulates)`);
  }
});

test('embedding forward (f32/bf16/f16 tables) and backward (repeated ids accumulate)', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  const N = 13, C = 37, V = 29;
  const ids = ints(c, Array.from({ length: N }, (_, i) => (i * 11) % 7 === 3 ? 5 : (i * 17) % V));
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    const table = randn(c, [V, C], dtype), out = randn(c, [N, C]);
    both(c, (be, s) => be.embeddingForward(s(out), s(ids), s(table), N, C));
    await expectClose(c, out, `embeddingForward ${dtype}`, 0);
  }
  const dtable = randn(c, [V, C]), dout = randn(c, [N, C]);
  both(c, (be, s) => be.embeddingBackward(s(dtable), s(dout), s(ids), N, C));
  await expectClose(c, dtable, 'embeddingBackward');
});

test('matmul forward and backward: bias or not, f32/bf16/f16 weights', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  const shapes = [[13, 37, 29], [1, 37, 29], [3, 300, 29], [4, 1000, 301], [67, 300, 131], [5, 20, 2100]] as const;
  for (const [N, C, OC] of shapes) {
    for (const dtype of ['f32', 'bf16', 'f16'] as const) {
      const tag = `${dtype} N=${N} C=${C} OC=${OC}`;
      const inp = randn(c, [N, C]), w = randn(c, [OC, C], dtype, 0.3), bias = randn(c, [OC], dtype);
      for (const withBias of [false, true]) {
        const out = randn(c, [N, OC]);
        both(c, (be, s) => be.matmulForward(s(out), s(inp), s(w), withBias ? s(bias) : null, N, C, OC));
        await expectClose(c, out, `matmulForward ${tag} bias=${withBias}`);
      }
      const dout = randn(c, [N, OC]), dinp = randn(c, [N, C]), dw = randn(c, [OC, C]), db = randn(c, [OC]);
      both(c, (be, s) => be.matmulBackward(s(dinp), s(dw), s(db), s(dout), s(inp), s(w), N, C, OC));
      await expectClose(c, dinp, `matmulBackward dinp ${tag}`);
      await expectClose(c, dw, `matmulBackward dweight ${tag}`);
      await expectClose(c, db, `matmulBackward dbias ${tag}`);
      both(c, (be, s) => be.matmulBackward(null, s(dw), null, s(dout), s(inp), s(w), N, C, OC));
      await expectClose(c, dw, `matmulBackward dweight only ${tag}`);
    }
  }
});

test('rmsnorm forward and backward (f32/bf16/f16 weight, with and without dweight)', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  for (const [N, C] of [[13, 37], [71, 1000]] as const) {
    for (const dtype of ['f32', 'bf16', 'f16'] as const) {
      const inp = randn(c, [N, C]), w = randn(c, [C], dtype), out = randn(c, [N, C]), rstd = randn(c, [N]);
      both(c, (be, s) => be.rmsnormForward(s(out), s(rstd), s(inp), s(w), N, C, 1e-5));
      await expectClose(c, out, `rmsnormForward ${dtype} C=${C}`);
      await expectClose(c, rstd, `rmsnormForward rstd ${dtype} C=${C}`);
      const dout = randn(c, [N, C]), dinp = randn(c, [N, C]), dw = randn(c, [C]);
      both(c, (be, s) => be.rmsnormBackward(s(dinp), s(dw), s(dout), s(inp), s(w), s(rstd), N, C));
      await expectClose(c, dinp, `rmsnormBackward dinp ${dtype} C=${C}`);
      await expectClose(c, dw, `rmsnormBackward dweight ${dtype} C=${C}`);
      both(c, (be, s) => be.rmsnormBackward(s(dinp), null, s(dout), s(inp), s(w), s(rstd), N, C));
      await expectClose(c, dinp, `rmsnormBackward (no dweight) ${dtype} C=${C}`);
    }
  }
});

test('rope forward and inverse', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  const B = 2, T = 11, H = 6, HD = 10;
  const x = randn(c, [B, T, H, HD]), cos = randn(c, [T, HD / 2]), sin = randn(c, [T, HD / 2]);
  for (const inverse of [false, true]) {
    both(c, (be, s) => be.rope(s(x), s(cos), s(sin), B, T, H, HD, inverse));
    await expectClose(c, x, `rope inverse=${inverse}`);
  }
});

test('swiglu forward and backward', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  const n = 20_011;
  const gate = randn(c, [n], 'f32', 4), up = randn(c, [n]), out = randn(c, [n]);
  both(c, (be, s) => be.swigluForward(s(out), s(gate), s(up), n));
  await expectClose(c, out, 'swigluForward');
  const dout = randn(c, [n]), dgate = randn(c, [n]), dup = randn(c, [n]);
  both(c, (be, s) => be.swigluBackward(s(dgate), s(dup), s(dout), s(gate), s(up), n));
  await expectClose(c, dgate, 'swigluBackward dgate');
  await expectClose(c, dup, 'swigluBackward dup');
});

/** The (B, Tkv) mask pair of paddingMask(), or null when nothing is masked. */
function maskPair(c: Backend, B: number, Tkv: number, pads: number[], holes: [number, number][] = []): Pair | null {
  return pads.length || holes.length ? pair(c, [B, Tkv], 'i32', paddingMask(B, Tkv, pads, holes)) : null;
}

for (const { B, T, NH, NKV, HD, pads, holes } of ATTENTION_SHAPES) {
  const tag = `B=${B} T=${T} NH=${NH} NKV=${NKV} HD=${HD} pads=${pads.join(',') || 'none'}`;
  test(`attention forward and backward, training shape ${tag}`, async (t) => {
    const c = needCpu(t);
    if (!c) return;
    const q = randn(c, [B, T, NH, HD]), k = randn(c, [B, T, NKV, HD]), v = randn(c, [B, T, NKV, HD]);
    const mask = maskPair(c, B, T, pads, holes);
    const out = randn(c, [B, T, NH, HD]), lse = randn(c, [B, NH, T]);
    both(c, (be, s) => be.attentionForward(s(out), s(lse), s(q), s(k), s(v), mask && s(mask), B, T, T, T, NH, NKV, HD));
    await expectClose(c, out, `attentionForward out ${tag}`);
    await expectClose(c, lse, `attentionForward lse ${tag}`);
    const dout = randn(c, [B, T, NH, HD]), dq = randn(c, [B, T, NH, HD]), dk = randn(c, [B, T, NKV, HD]), dv = randn(c, [B, T, NKV, HD]);
    both(c, (be, s) => be.attentionBackward(s(dq), s(dk), s(dv), s(dout), s(out), s(lse), s(q), s(k), s(v), mask && s(mask), B, T, NH, NKV, HD));
    await expectClose(c, dq, `attentionBackward dq ${tag}`);
    await expectClose(c, dk, `attentionBackward dk ${tag}`);
    await expectClose(c, dv, `attentionBackward dv ${tag}`);
  });
}

test('attention forward, KV-cache decode shapes (Tq < Tk <= Tkv), with and without a mask', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  for (const { B, Tq, Tk, Tkv, NH, NKV, HD, pads } of DECODE_SHAPES) {
    const q = randn(c, [B, Tq, NH, HD]), k = randn(c, [B, Tkv, NKV, HD]), v = randn(c, [B, Tkv, NKV, HD]);
    for (const mask of [null, maskPair(c, B, Tkv, pads)]) {
      const tag = `B=${B} Tq=${Tq} Tk=${Tk} Tkv=${Tkv} NH=${NH} NKV=${NKV} HD=${HD} pads=${mask ? pads : 'none'}`;
      const out = randn(c, [B, Tq, NH, HD]), lse = randn(c, [B, NH, Tq]);
      both(c, (be, s) => be.attentionForward(s(out), s(lse), s(q), s(k), s(v), mask && s(mask), B, Tq, Tk, Tkv, NH, NKV, HD));
      await expectClose(c, out, `attention decode out ${tag}`);
      await expectClose(c, lse, `attention decode lse ${tag}`);
    }
  }
});

for (const { B, T, NH, NKV, HD, lens } of SEGMENT_SHAPES) {
  const tag = `B=${B} T=${T} NH=${NH} NKV=${NKV} HD=${HD} segments=${lens.map((r) => r.join('+')).join('|')}`;
  test(`attention forward and backward with packed segments ${tag}`, async (t) => {
    const c = needCpu(t);
    if (!c) return;
    const q = randn(c, [B, T, NH, HD]), k = randn(c, [B, T, NKV, HD]), v = randn(c, [B, T, NKV, HD]);
    const seg = pair(c, [B, T], 'i32', segmentIds(T, lens));
    const out = output(c, [B, T, NH, HD]), lse = output(c, [B, NH, T]);
    both(c, (be, s) => be.attentionForward(s(out), s(lse), s(q), s(k), s(v), null, B, T, T, T, NH, NKV, HD, s(seg)));
    await expectClose(c, out, `attentionForward out ${tag}`);
    await expectClose(c, lse, `attentionForward lse ${tag}`);
    const dout = randn(c, [B, T, NH, HD]), dq = output(c, [B, T, NH, HD]), dk = output(c, [B, T, NKV, HD]), dv = output(c, [B, T, NKV, HD]);
    both(c, (be, s) => be.attentionBackward(s(dq), s(dk), s(dv), s(dout), s(out), s(lse), s(q), s(k), s(v), null, B, T, NH, NKV, HD, s(seg)));
    await expectClose(c, dq, `attentionBackward dq ${tag}`);
    await expectClose(c, dk, `attentionBackward dk ${tag}`);
    await expectClose(c, dv, `attentionBackward dv ${tag}`);
  });
}

test('attention forward with packed segments, KV-cache shape (Tq < Tk <= Tkv): queries in the last segments', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  const { B, Tq, Tk, Tkv, NH, NKV, HD, lens } = SEGMENT_DECODE;
  const q = randn(c, [B, Tq, NH, HD]), k = randn(c, [B, Tkv, NKV, HD]), v = randn(c, [B, Tkv, NKV, HD]);
  const seg = pair(c, [B, Tkv], 'i32', segmentIds(Tkv, lens));
  const out = output(c, [B, Tq, NH, HD]), lse = output(c, [B, NH, Tq]);
  both(c, (be, s) => be.attentionForward(s(out), s(lse), s(q), s(k), s(v), null, B, Tq, Tk, Tkv, NH, NKV, HD, s(seg)));
  await expectClose(c, out, 'attention decode with segments out');
  await expectClose(c, lse, 'attention decode with segments lse');
});

test('attention refuses a key mask together with segments', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  const B = 1, T = 8, NH = 2, HD = 4;
  const q = randn(c, [B, T, NH, HD]), out = output(c, [B, T, NH, HD]), lse = output(c, [B, NH, T]);
  const ones = pair(c, [B, T], 'i32', new Int32Array(T).fill(1)), seg = pair(c, [B, T], 'i32', segmentIds(T, [[3]]));
  for (const be of [js, c] as Backend[]) {
    const s = (p: Pair) => (be === js ? p.js : p.cpu[0]!);
    assert.throws(() => be.attentionForward(s(out), s(lse), s(q), s(q), s(q), s(ones), B, T, T, T, NH, NH, HD, s(seg)), /segments or a key mask, not both/);
  }
});

test('cross-entropy: losses, separate and in-place logit gradients, ignored rows', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  for (const [N, V] of [[13, 37], [27, 3001]] as const) {
    const targets = ints(c, Array.from({ length: N }, (_, i) => (i % 4 === 1 ? -100 : (i * 31) % V)));
    const logits = randn(c, [N, V], 'f32', 3), losses = randn(c, [N]), dlogits = randn(c, [N, V]);
    both(c, (be, s) => be.crossEntropy(s(losses), null, s(logits), s(targets), N, V, 0));
    await expectClose(c, losses, `crossEntropy losses V=${V}`);
    both(c, (be, s) => be.crossEntropy(s(losses), s(dlogits), s(logits), s(targets), N, V, 1 / 7));
    await expectClose(c, dlogits, `crossEntropy dlogits V=${V}`);
    both(c, (be, s) => be.crossEntropy(s(losses), s(logits), s(logits), s(targets), N, V, 1 / 7));
    await expectClose(c, logits, `crossEntropy in place V=${V}`);
    await expectClose(c, losses, `crossEntropy in-place losses V=${V}`);
  }
});

test('argmaxRows: the first index of each row\'s largest value, with ties, NaN, -0/+0 and -Infinity (exact)', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  for (const V of [37, 32_005]) {
    // planted rows and the index a left-to-right scan keeping the first strictly greater value picks (by hand)
    const rows: [(x: Float32Array) => void, number][] = [
      [(x) => ((x[5] = 9), (x[20] = 9)), 5], // a tie: the first
      [(x) => ((x[0] = NaN), (x[9] = 9)), 0], // NaN first: nothing beats it
      [(x) => ((x[3] = NaN), (x[10] = 9)), 10], // NaN later: never chosen
      [(x) => x.fill(-Infinity), 0],
      [(x) => (x.fill(-2), (x[1] = -0), (x[2] = 0)), 1], // +0 is not greater than -0
      [(x) => (x[V - 1] = 9), V - 1],
      // NaN everywhere past 0: rows long enough are read in column spans (one per thread), and every later span
      // then starts on a NaN, which must not hide the span's greater value, nor win itself
      [(x) => (x.fill(NaN), (x[0] = -5), (x[V - 1] = 9)), V - 1],
      [(x) => (x.fill(NaN), (x[0] = 1), (x[V - 1] = 0.5)), 0],
    ];
    const values = randomValues((rows.length + 1) * V, 3); // the last row: random values only
    rows.forEach(([plant], r) => plant(values.subarray(r * V, (r + 1) * V)));
    const R = rows.length + 1, x = pair(c, [R, V], 'f32', values), out = ints(c, new Int32Array(R).fill(-1));
    both(c, (be, s) => be.argmaxRows(s(out), s(x), R, V));
    const want = (await js.download(out.js)) as Int32Array;
    assert.deepEqual([...want.subarray(0, rows.length)], rows.map(([, i]) => i), `js V=${V}`);
    await expectClose(c, out, `argmaxRows V=${V}`);
  }
});

test('sumSquares accumulates; adamw over several steps', async (t) => {
  const c = needCpu(t);
  if (!c) return;
  for (const n of [37, 200_003]) {
    const x = randn(c, [n]), out = pair(c, [1], 'f32', Float32Array.of(2.5));
    both(c, (be, s) => be.sumSquares(s(out), s(x)));
    await expectClose(c, out, `sumSquares ${n}`);
  }
  const n = 1001;
  const p = randn(c, [n]), m = pair(c, [n], 'f32', new Float32Array(n)), v = pair(c, [n], 'f32', new Float32Array(n));
  for (let step = 1; step <= 3; step++) {
    const g = randn(c, [n], 'f32', 0.1);
    both(c, (be, s) => be.adamw(s(p), s(g), s(m), s(v), 1e-2, 0.9, 0.999, 1e-8, 0.01, step));
  }
  await expectClose(c, p, 'adamw param');
  await expectClose(c, m, 'adamw m');
  await expectClose(c, v, 'adamw v');
});

// Model widths: N = B*T rows of C. Each pooled op gets about 2^20 elements of work (N*C, N*F, C*C, ...), so it
// splits into several chunks per thread in every variant (parity-shapes.ts); attention runs them above.
for (const m of MODEL_SHAPES) {
  const { B, T, C, NH, NKV, HD, F, V, r } = m;
  const N = B * T;

  test(`${m.name}: dropout, add, axpy, scale, copy with conversion, fill on (N, C)`, async (t) => {
    const c = needCpu(t);
    if (!c) return;
    const a = randn(c, [N, C]), b = randn(c, [N, C]), out = output(c, [N, C]);
    both(c, (be, s) => be.dropout(s(out), s(a), 0.05, 0xdeadbeef));
    await expectClose(c, out, 'dropout', 0);
    both(c, (be, s) => be.add(s(a), s(a), s(b)));
    await expectClose(c, a, 'add');
    both(c, (be, s) => be.axpy(s(a), s(b), -0.37));
    await expectClose(c, a, 'axpy');
    both(c, (be, s) => be.scale(s(b), 1.7));
    await expectClose(c, b, 'scale');
    const src = randn(c, [N, C]);
    for (const dtype of ['bf16', 'f16'] as const) {
      const half = pair(c, [N, C], dtype), back = output(c, [N, C]);
      both(c, (be, s) => be.copy(s(half), s(src)));
      await expectClose(c, half, `copy f32 -> ${dtype}`, 0);
      both(c, (be, s) => be.copy(s(back), s(half)));
      await expectClose(c, back, `copy ${dtype} -> f32`, 0);
    }
    both(c, (be, s) => be.fill(s(b), -2.5));
    await expectClose(c, b, 'fill', 0);
  });

  test(`${m.name}: embedding forward (f32/bf16/f16) and backward, (N, C) from 1024 rows`, async (t) => {
    const c = needCpu(t);
    if (!c) return;
    const rows = 1024; // of V: a full (V, C) table would be 0.5 GB per copy; ids repeat about N / 1024 times
    const ids = ints(c, Array.from({ length: N }, () => rng.int(rows)));
    for (const dtype of ['f32', 'bf16', 'f16'] as const) {
      const table = randn(c, [rows, C], dtype), out = output(c, [N, C]);
      both(c, (be, s) => be.embeddingForward(s(out), s(ids), s(table), N, C));
      await expectClose(c, out, `embeddingForward ${dtype}`, 0);
    }
    const dtable = randn(c, [rows, C]), dout = randn(c, [N, C]);
    both(c, (be, s) => be.embeddingBackward(s(dtable), s(dout), s(ids), N, C));
    await expectClose(c, dtable, 'embeddingBackward');
  });

  test(`${m.name}: rmsnorm forward and backward (f32/bf16/f16 weight) on (N, C)`, async (t) => {
    const c = needCpu(t);
    if (!c) return;
    const inp = randn(c, [N, C]), dout = randn(c, [N, C]);
    for (const dtype of ['f32', 'bf16', 'f16'] as const) {
      const w = randn(c, [C], dtype), out = output(c, [N, C]), rstd = output(c, [N]), dinp = output(c, [N, C]), dw = randn(c, [C]);
      both(c, (be, s) => be.rmsnormForward(s(out), s(rstd), s(inp), s(w), N, C, 1e-5));
      await expectClose(c, out, `rmsnormForward ${dtype}`);
      await expectClose(c, rstd, `rmsnormForward rstd ${dtype}`);
      both(c, (be, s) => be.rmsnormBackward(s(dinp), s(dw), s(dout), s(inp), s(w), s(rstd), N, C));
      await expectClose(c, dinp, `rmsnormBackward dinp ${dtype}`);
      await expectClose(c, dw, `rmsnormBackward dweight ${dtype}`);
    }
  });

  test(`${m.name}: rope forward and inverse on q (B, T, NH, HD) and k (B, T, NKV, HD)`, async (t) => {
    const c = needCpu(t);
    if (!c) return;
    const cos = randn(c, [T, HD / 2]), sin = randn(c, [T, HD / 2]);
    for (const H of [NH, NKV]) {
      const x = randn(c, [B, T, H, HD]);
      for (const inverse of [false, true]) {
        both(c, (be, s) => be.rope(s(x), s(cos), s(sin), B, T, H, HD, inverse));
        await expectClose(c, x, `rope H=${H} inverse=${inverse}`);
      }
    }
  });

  test(`${m.name}: swiglu forward and backward on (N, F)`, async (t) => {
    const c = needCpu(t);
    if (!c) return;
    const n = N * F;
    const gate = randn(c, [n], 'f32', 4), up = randn(c, [n]), dout = randn(c, [n]), out = output(c, [n]), dgate = output(c, [n]), dup = output(c, [n]);
    both(c, (be, s) => be.swigluForward(s(out), s(gate), s(up), n));
    await expectClose(c, out, 'swigluForward');
    both(c, (be, s) => be.swigluBackward(s(dgate), s(dup), s(dout), s(gate), s(up), n));
    await expectClose(c, dgate, 'swigluBackward dgate');
    await expectClose(c, dup, 'swigluBackward dup');
  });

  test(`${m.name}: matmul as LoRA A (N, C) -> (N, r), LoRA B (N, r) -> (N, C) with bias, decode (3, C) -> (C)`, async (t) => {
    const c = needCpu(t);
    if (!c) return;
    const x = randn(c, [N, C]), xr = randn(c, [N, r]), x3 = randn(c, [3, C]), w = randomValues(C * C, 0.02);
    for (const dtype of ['f32', 'bf16', 'f16'] as const) {
      const A = randn(c, [r, C], dtype, 0.02), out = output(c, [N, r]), dout = randn(c, [N, r]), dx = output(c, [N, C]), dA = randn(c, [r, C]);
      both(c, (be, s) => be.matmulForward(s(out), s(x), s(A), null, N, C, r));
      await expectClose(c, out, `lora A forward ${dtype}`);
      both(c, (be, s) => be.matmulBackward(s(dx), s(dA), null, s(dout), s(x), s(A), N, C, r));
      await expectClose(c, dx, `lora A backward dinp ${dtype}`);
      await expectClose(c, dA, `lora A backward dweight ${dtype}`);

      const Bw = randn(c, [C, r], dtype, 0.3), bias = randn(c, [C], dtype), y = output(c, [N, C]), dy = randn(c, [N, C]);
      const dxr = output(c, [N, r]), dB = randn(c, [C, r]), db = randn(c, [C]);
      both(c, (be, s) => be.matmulForward(s(y), s(xr), s(Bw), s(bias), N, r, C));
      await expectClose(c, y, `lora B forward with bias ${dtype}`);
      both(c, (be, s) => be.matmulBackward(s(dxr), s(dB), s(db), s(dy), s(xr), s(Bw), N, r, C));
      await expectClose(c, dxr, `lora B backward dinp ${dtype}`);
      await expectClose(c, dB, `lora B backward dweight ${dtype}`);
      await expectClose(c, db, `lora B backward dbias ${dtype}`);

      const W = pair(c, [C, C], dtype, w), y3 = output(c, [3, C]);
      both(c, (be, s) => be.matmulForward(s(y3), s(x3), s(W), s(bias), 3, C, C));
      await expectClose(c, y3, `decode forward with bias ${dtype}`);
    }
  });

  test(`${m.name}: cross-entropy on 64 rows of V, separate and in-place gradients`, async (t) => {
    const c = needCpu(t);
    if (!c) return;
    const rows = 64;
    const targets = ints(c, Array.from({ length: rows }, (_, i) => (i % 5 === 2 ? -100 : rng.int(V))));
    const logits = randn(c, [rows, V], 'f32', 3), losses = output(c, [rows]), dlogits = output(c, [rows, V]);
    both(c, (be, s) => be.crossEntropy(s(losses), s(dlogits), s(logits), s(targets), rows, V, 1 / 50));
    await expectClose(c, losses, 'crossEntropy losses');
    await expectClose(c, dlogits, 'crossEntropy dlogits');
    both(c, (be, s) => be.crossEntropy(s(losses), s(logits), s(logits), s(targets), rows, V, 1 / 50));
    await expectClose(c, logits, 'crossEntropy in place');
  });

  test(`${m.name}: sumSquares and 3 AdamW steps on N*C parameters`, async (t) => {
    const c = needCpu(t);
    if (!c) return;
    const n = N * C;
    const p = randn(c, [n]), mom = randn(c, [n], 'f32', 0.01), vel = pair(c, [n], 'f32', randomValues(n, 0.01).map((x) => x * x));
    const out = pair(c, [1], 'f32', Float32Array.of(2.5));
    both(c, (be, s) => be.sumSquares(s(out), s(p)));
    await expectClose(c, out, 'sumSquares');
    for (let step = 1; step <= 3; step++) {
      const g = randn(c, [n], 'f32', 0.1);
      both(c, (be, s) => be.adamw(s(p), s(g), s(mom), s(vel), 1e-2, 0.9, 0.999, 1e-8, 0.01, step));
    }
    await expectClose(c, p, 'adamw param');
    await expectClose(c, mom, 'adamw m');
    await expectClose(c, vel, 'adamw v');
  });
}
