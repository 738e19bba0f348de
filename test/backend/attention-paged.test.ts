// attentionPaged (backend.ts) against its definition: for each row, attentionForward over the row's keys laid out
// contiguously (old keys read from its scattered blocks, the step's new keys at its last positions). Checked for
// the js reference, the cpu kernel and the composition from other ops that the cuda backend uses, with GQA,
// rows of several queries (a prefill chunk), blocks in no order across chunks, a head size off the SIMD width and
// one that takes the cpu kernel's vector paths.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import { attentionPagedByParts } from '../../src/backends/paged-attention-by-parts.ts';
import type { Backend } from '../../src/engine/backend.ts';
import type { DType } from '../../src/engine/dtype.ts';
import { Rng } from '../../src/engine/random.ts';
import type { Tensor } from '../../src/engine/tensor.ts';
import { needCpu } from '../helpers/cpu-backend.ts';

interface Row { n0: number; Tq: number; Tk: number; blocks: number[] } // stream offset, new queries, keys (incl. the new ones), block ids
interface Shape { name: string; NH: number; NKV: number; HD: number; BT: number; BPC: number; CHUNKS: number; N: number; rows: Row[] }

// 9 blocks of 4 steps; a head size off the SIMD width (the cpu kernel's scalar paths)
const SMALL: Shape = {
  name: 'head size 12, blocks of 4', NH: 4, NKV: 2, HD: 12, BT: 4, BPC: 3, CHUNKS: 3, N: 12, rows: [
    { n0: 10, Tq: 1, Tk: 7, blocks: [5, 2] },
    { n0: 0, Tq: 10, Tk: 11, blocks: [0, 7, 3] }, // a prefill chunk: more queries than the cpu kernel takes at once (8)
    { n0: 11, Tq: 1, Tk: 1, blocks: [8] },
  ],
};
// the cpu kernel's vector paths: 64 + 32 + 8 columns per head, groups of 4 keys cut short at the ends of blocks of 6;
// 3 heads per KV head, so a task's whole KV groups take both the paired path (heads 0-1, 3-4) and the single one (2, 5)
const WIDE: Shape = {
  name: 'head size 104, blocks of 6, 6 heads over 2 KV heads', NH: 6, NKV: 2, HD: 104, BT: 6, BPC: 3, CHUNKS: 3, N: 12, rows: [
    { n0: 10, Tq: 1, Tk: 17, blocks: [5, 2, 6] },
    { n0: 0, Tq: 10, Tk: 13, blocks: [0, 7, 3] },
    { n0: 11, Tq: 1, Tk: 1, blocks: [8] },
  ],
};

const rng = new Rng(5);
const draw = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
const inputs = (sh: Shape) => {
  const KD = sh.NKV * sh.HD, chunk = sh.BPC * sh.BT * KD, maxBlocks = Math.max(...sh.rows.map((r) => r.blocks.length));
  return {
    q: draw(sh.N * sh.NH * sh.HD), k: draw(sh.N * KD), v: draw(sh.N * KD),
    kc: Array.from({ length: sh.CHUNKS }, () => draw(chunk)), vc: Array.from({ length: sh.CHUNKS }, () => draw(chunk)),
    rowInfo: Int32Array.from(sh.rows.flatMap((r) => [r.n0, r.Tq, r.Tk])),
    blockTable: Int32Array.from(sh.rows.flatMap((r) => [...r.blocks, ...Array(maxBlocks - r.blocks.length).fill(0)])),
  };
};
const DATA = new Map([SMALL, WIDE].map((sh) => [sh, inputs(sh)]));
const { NH, NKV, HD, BT, BPC, N } = SMALL; // the argument checks' shape
const KD = NKV * HD;

interface Case { out: Float32Array; kc: Float32Array[]; vc: Float32Array[] }

async function run(be: Backend, how: 'op' | 'parts', dtype: DType = 'f32', cacheDtype: DType = 'f32', sh: Shape = SMALL): Promise<Case> {
  const { NH, NKV, HD, BT, BPC, N } = sh, KD = NKV * HD, data = DATA.get(sh)!;
  const up = (values: Float32Array, shape: number[], dt: DType = dtype) => {
    const t = be.alloc(shape, dt, 'scratch');
    be.upload(t, values); // rounded to nearest even when 16-bit
    return t;
  };
  const q = up(data.q, [N, NH * HD]), k = up(data.k, [N, KD]), v = up(data.v, [N, KD]);
  const out = be.alloc([N, NH * HD], dtype, 'scratch');
  const kc = data.kc.map((c) => up(c, [BPC * BT, KD], cacheDtype)), vc = data.vc.map((c) => up(c, [BPC * BT, KD], cacheDtype));
  if (how === 'op') be.attentionPaged(out, q, k, v, kc, vc, data.rowInfo, data.blockTable, N, NH, NKV, HD, BT, BPC);
  else {
    const get = (_name: string, n: number) => be.alloc([n], 'f32', 'scratch'); // freed with the arena below
    attentionPagedByParts(be, get, out, q, k, v, kc, vc, data.rowInfo, data.blockTable, N, NH, NKV, HD, BT, BPC);
  }
  const read = async (t: Tensor) => (await be.download(t)) as Float32Array;
  const result = { out: await read(out), kc: await Promise.all(kc.map(read)), vc: await Promise.all(vc.map(read)) };
  be.freeArena('scratch');
  return result;
}

/** The definition: each row's keys gathered in time order (new ones last), attentionForward on the js reference. */
function expected(sh: Shape = SMALL): Case {
  const { NH, NKV, HD, BT, BPC, N } = sh, KD = NKV * HD, data = DATA.get(sh)!;
  const be = new JsBackend();
  const kc = data.kc.map((c) => c.slice()), vc = data.vc.map((c) => c.slice());
  const out = new Float32Array(N * NH * HD);
  for (const r of sh.rows) {
    const where = (t: number) => {
      const id = r.blocks[Math.floor(t / BT)]!;
      return { chunk: Math.floor(id / BPC), at: ((id % BPC) * BT + (t % BT)) * KD };
    };
    for (let i = 0; i < r.Tq; i++) {
      const s = where(r.Tk - r.Tq + i);
      kc[s.chunk]!.set(data.k.subarray((r.n0 + i) * KD, (r.n0 + i + 1) * KD), s.at);
      vc[s.chunk]!.set(data.v.subarray((r.n0 + i) * KD, (r.n0 + i + 1) * KD), s.at);
    }
    const K = new Float32Array(r.Tk * KD), V = new Float32Array(r.Tk * KD);
    for (let t = 0; t < r.Tk; t++) {
      const s = where(t);
      K.set(kc[s.chunk]!.subarray(s.at, s.at + KD), t * KD);
      V.set(vc[s.chunk]!.subarray(s.at, s.at + KD), t * KD);
    }
    const tensor = (values: Float32Array, shape: number[]) => {
      const t = be.alloc(shape, 'f32', 'scratch');
      be.upload(t, values);
      return t;
    };
    const o = tensor(new Float32Array(r.Tq * NH * HD), [r.Tq, NH * HD]), lse = tensor(new Float32Array(NH * r.Tq), [NH * r.Tq]);
    const q = tensor(data.q.slice(r.n0 * NH * HD, (r.n0 + r.Tq) * NH * HD), [r.Tq, NH * HD]);
    be.attentionForward(o, lse, q, tensor(K, [r.Tk, KD]), tensor(V, [r.Tk, KD]), null, 1, r.Tq, r.Tk, r.Tk, NH, NKV, HD);
    out.set(o.handle as Float32Array, r.n0 * NH * HD);
  }
  return { out, kc, vc };
}

/** x rounded to bf16 (nearest even), by hand. */
function bf16(x: number): number {
  const bits = new Uint32Array(new Float32Array([x]).buffer)[0]!;
  return new Float32Array(new Uint32Array([(bits + 0x7fff + ((bits >> 16) & 1)) & 0xffff0000]).buffer)[0]!;
}

function close(got: Float32Array, want: Float32Array, tol: number, what: string): void {
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  assert.ok(worst <= tol, `${what}: largest difference ${worst} > ${tol}`);
}

function matches(got: Case, want: Case, tol: number, what: string): void {
  close(got.out, want.out, tol, `${what} out`);
  got.kc.forEach((c, i) => assert.deepEqual(c, want.kc[i], `${what}: key chunk ${i}`));
  got.vc.forEach((c, i) => assert.deepEqual(c, want.vc[i], `${what}: value chunk ${i}`));
}

test('js attentionPaged = attentionForward over each row\'s gathered keys, and the new keys land in their blocks', async () => {
  matches(await run(new JsBackend(), 'op'), expected(), 1e-6, 'js');
});

test('the composition from copies and attentionForward (cuda\'s attentionPaged) = the definition, on js', async () => {
  matches(await run(new JsBackend(), 'parts'), expected(), 1e-6, 'by parts');
});

for (const sh of [SMALL, WIDE]) {
  test(`cpu attentionPaged = the definition, ${sh.name} (float32 sums vs the reference's doubles: 2e-5)`, async (t) => {
    const cpu = needCpu(t);
    if (cpu) matches(await run(cpu, 'op', 'f32', 'f32', sh), expected(sh), 2e-5, 'cpu');
  });

  for (const cache of ['f32', 'bf16'] as const) {
    test(`cpu attentionPaged with bf16 q, k, v and out, ${cache} cache, ${sh.name} = the js reference (one rounding apart: 2e-2)`, async (t) => {
      const cpu = needCpu(t);
      if (!cpu) return;
      const [got, want] = [await run(cpu, 'op', 'bf16', cache, sh), await run(new JsBackend(), 'op', 'bf16', cache, sh)];
      close(got.out, want.out, 2e-2, 'bf16 out');
      got.kc.forEach((c, i) => assert.deepEqual(c, want.kc[i], `key chunk ${i}`));
      got.vc.forEach((c, i) => assert.deepEqual(c, want.vc[i], `value chunk ${i}`));
    });
  }
}

test('a bf16 cache holds the new keys rounded once, and attention reads them as stored (js, vs the f32 definition: 3e-2)', async () => {
  const got = await run(new JsBackend(), 'op', 'f32', 'bf16'), want = expected();
  close(got.out, want.out, 3e-2, 'out');
  const data = DATA.get(SMALL)!, row = SMALL.rows[0]!, slot = ((row.blocks[1]! % BPC) * BT + 2) * KD; // row 0's new key: position 6, block 1, step 2
  const chunk = Math.floor(row.blocks[1]! / BPC);
  for (let d = 0; d < KD; d++) assert.equal(got.kc[chunk]![slot + d], bf16(data.k[row.n0 * KD + d]!), `key element ${d}`);
});

test('attentionPaged refuses a block id outside the cache and a row past the step', () => {
  const be = new JsBackend();
  const f = (n: number) => be.alloc([n], 'f32', 'scratch');
  const kc = [f(BPC * BT * KD)], vc = [f(BPC * BT * KD)];
  const call = (rows: number[], blocks: number[]) => () =>
    be.attentionPaged(f(N * NH * HD), f(N * NH * HD), f(N * KD), f(N * KD), kc, vc, Int32Array.from(rows), Int32Array.from(blocks), N, NH, NKV, HD, BT, BPC);
  assert.throws(call([0, 1, 5], [1, 3]), /row 0's block 1 is 3, outside the 3 blocks/);
  assert.throws(call([11, 2, 5], [0, 1]), /row 0 \(n0 11, Tq 2, Tk 5\) does not fit N = 12/);
});
