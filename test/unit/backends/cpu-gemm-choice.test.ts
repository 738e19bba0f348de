// The cpu backend's measured GEMM choice (src/backends/native/cpu-gemm-choice.ts) with injected timings: the
// faster kernel wins per entry, the choice is cached per machine key in a temporary cache folder, a corrupt or
// malformed cache is ignored and rewritten, other machines' records are kept. No timing is real here.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  chooseGemm, GEMM_ENTRIES, gemmCacheFile, gemmTableString, measureGemm, parseGemmTable,
  type GemmClass, type GemmDtype, type GemmKernel, type GemmTimer,
} from '../../../src/backends/native/cpu-gemm-choice.ts';

const dir = mkdtempSync(join(tmpdir(), 'gemm-choice-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const freshFile = () => join(dir, `cache-${fileNo++}`, 'cpu-gemm.json');

/** A timer from a table of seconds (own, openblas) per entry, counting its calls. */
function fakeTimer(table: Partial<Record<string, [number, number]>>): GemmTimer & { calls: string[] } {
  const calls: string[] = [];
  const timer = (kernel: GemmKernel, dtype: GemmDtype, cls: GemmClass) => {
    calls.push(`${kernel} ${dtype}/${cls}`);
    const [own, blas] = table[`${dtype}/${cls}`] ?? [1, 2];
    return kernel === 'own' ? own : blas;
  };
  return Object.assign(timer, { calls });
}

test('the faster kernel is chosen per dtype and shape class', () => {
  const { choice, seconds } = measureGemm(fakeTimer({ 'bf16/skinny': [3, 1], 'f16/large': [2, 1.5] }));
  assert.equal(choice['bf16/skinny'], 'openblas');
  assert.equal(choice['f16/large'], 'openblas');
  for (const e of GEMM_ENTRIES.filter((e) => e !== 'bf16/skinny' && e !== 'f16/large')) assert.equal(choice[e], 'own', e);
  assert.deepEqual(seconds['f16/large'], { own: 2, openblas: 1.5 });
});

test('each entry keeps its best time over the rounds, kernels interleaved in alternating order', () => {
  const calls: string[] = [];
  const ownCalls = new Map<string, number>();
  // own takes 5, 1, 5 in its three rounds, openblas always 2: own wins only because its best round counts.
  const timer: GemmTimer = (kernel, dtype, cls) => {
    calls.push(`${kernel} ${dtype}/${cls}`);
    if (kernel === 'openblas') return 2;
    const n = ownCalls.get(`${dtype}/${cls}`) ?? 0;
    ownCalls.set(`${dtype}/${cls}`, n + 1);
    return n === 1 ? 1 : 5;
  };
  const { choice, seconds } = measureGemm(timer, 3);
  assert.equal(calls.length, 3 * GEMM_ENTRIES.length * 2);
  assert.deepEqual(calls.slice(0, 2), ['own f32/large', 'openblas f32/large']);
  assert.deepEqual(calls.slice(2 * GEMM_ENTRIES.length, 2 * GEMM_ENTRIES.length + 2), ['openblas f32/large', 'own f32/large']);
  for (const e of GEMM_ENTRIES) {
    assert.equal(seconds[e].own, 1, e);
    assert.equal(choice[e], 'own', e);
  }
});

test('a measured choice is cached per machine key and read back without timing', () => {
  const file = freshFile();
  const first = fakeTimer({ 'f32/large': [2, 1] });
  const a = chooseGemm({ key: 'cpu A', file, time: first, now: () => new Date('2026-01-02T03:04:05Z') });
  assert.equal(a.source, 'measured');
  assert.equal(a.written, true);
  assert.equal(a.choice['f32/large'], 'openblas');
  assert.ok(first.calls.length > 0);

  const again = fakeTimer({});
  const b = chooseGemm({ key: 'cpu A', file, time: again });
  assert.equal(b.source, 'cache');
  assert.deepEqual(b.choice, a.choice);
  assert.equal(again.calls.length, 0, 'a cached choice is not measured again');

  // Another machine key measures, and both records stay in the file.
  const c = chooseGemm({ key: 'cpu B', file, time: fakeTimer({ 'f32/large': [1, 2] }) });
  assert.equal(c.source, 'measured');
  assert.equal(c.choice['f32/large'], 'own');
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  assert.deepEqual(Object.keys(saved.machines).sort(), ['cpu A', 'cpu B']);
  assert.equal(saved.machines['cpu A'].measuredAt, '2026-01-02T03:04:05.000Z');
});

for (const [what, content] of [
  ['not JSON', '{"version": 1, "machines": {'],
  ['another version', JSON.stringify({ version: 99, machines: {} })],
  ['a record with an unknown kernel', JSON.stringify({ version: 1, machines: { 'cpu A': { choice: { 'f32/large': 'mkl' }, seconds: {}, measuredAt: 'x' } } })],
] as const) {
  test(`a cache file that is ${what} is ignored and rewritten`, () => {
    const file = freshFile();
    chooseGemm({ key: 'seed', file, time: fakeTimer({}) }); // creates the folder
    writeFileSync(file, content);
    const timer = fakeTimer({ 'bf16/large': [2, 1] });
    const r = chooseGemm({ key: 'cpu A', file, time: timer });
    assert.equal(r.source, 'measured');
    assert.ok(timer.calls.length > 0);
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(saved.version, 1);
    assert.equal(saved.machines['cpu A'].choice['bf16/large'], 'openblas');
    assert.equal(chooseGemm({ key: 'cpu A', file, time: fakeTimer({}) }).source, 'cache');
  });
}

test('a cache folder that cannot be written still gives a measured choice', () => {
  const blocker = join(dir, 'a-file');
  writeFileSync(blocker, '');
  const r = chooseGemm({ key: 'cpu A', file: join(blocker, 'alpaca-lora', 'cpu-gemm.json'), time: fakeTimer({ 'f16/skinny': [2, 1] }) });
  assert.equal(r.source, 'measured');
  assert.equal(r.written, false);
  assert.equal(r.choice['f16/skinny'], 'openblas');
});

test('the cache lives under XDG_CACHE_HOME, else ~/.cache', () => {
  assert.equal(gemmCacheFile({ XDG_CACHE_HOME: '/x/cache' }, '/home/u'), join('/x/cache', 'alpaca-lora', 'cpu-gemm.json'));
  assert.equal(gemmCacheFile({}, '/home/u'), join('/home/u', '.cache', 'alpaca-lora', 'cpu-gemm.json'));
  assert.equal(gemmCacheFile({ XDG_CACHE_HOME: '' }, '/home/u'), join('/home/u', '.cache', 'alpaca-lora', 'cpu-gemm.json'));
});

test("the addon's table string round-trips and a malformed one is refused", () => {
  const { choice } = measureGemm(fakeTimer({ 'f32/skinny': [2, 1], 'f16/large': [2, 1] }), 1);
  const s = gemmTableString(choice);
  assert.equal(s, 'f32 own/openblas, bf16 own/own, f16 openblas/own');
  assert.deepEqual(parseGemmTable(s), choice);
  assert.throws(() => parseGemmTable('f32 own/own'), /not a GEMM table/);
  assert.throws(() => parseGemmTable('f32 own/mkl, bf16 own/own, f16 own/own'), /not a GEMM table/);
});
