// The cpu addon's tensor memory (native/cpu/src/binding/tensor-memory.h): buffers from 2 MB on get a mapping of
// their own, small model weights are packed into shared mappings, the rest comes from the heap. Every kind starts
// zeroed, keeps what is written to its last element, fails cleanly once freed, and freeing a packed weight (which
// gives back its whole pages) leaves its neighbours intact; a freed buffer is not unmapped again later (a second
// unmap at a null address crashed a process at exit once).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { ADDON_PATH, loadCpuAddon, type CpuAddon } from '../../src/backends/native/cpu-addon.ts';

const addon = loadCpuAddon();
const F32 = 0;

function need(t: { skip: (why: string) => void }): CpuAddon | null {
  if (!('unavailable' in addon)) return addon;
  if (process.env.CI === 'true') throw new Error(addon.unavailable);
  t.skip(addon.unavailable);
  return null;
}

// 2.8 MB (own mapping, not a whole number of 2 MB pages), 40 KB as a weight (packed) and as scratch (heap)
for (const [what, n, weight] of [['a 2.8 MB tensor', 700_001, false], ['a packed 40 KB weight', 10_001, true], ['a 40 KB heap tensor', 10_001, false]] as const) {
  test(`${what} starts zeroed, keeps its last element, and fails cleanly once freed`, (t) => {
    const a = need(t);
    if (!a) return;
    const x = a.alloc(n, F32, weight);
    assert.ok((a.download(x) as Float32Array).every((v) => v === 0), 'zeroed');
    const values = Float32Array.from({ length: n }, (_, i) => i % 1000);
    a.upload(x, values);
    const tail = a.view(x, n - 3, 3);
    assert.deepEqual([...(a.download(tail) as Float32Array)], [...values.subarray(n - 3)]);
    a.free(x);
    assert.throws(() => a.fill(tail, 1), /used after it was freed/);
  });
}

test('freeing a packed weight leaves the weights beside it (sharing its first and last pages) as they were', (t) => {
  const a = need(t);
  if (!a) return;
  const n = 5_003; // 20 012 bytes: neighbours share pages
  const ws = Array.from({ length: 5 }, (_, i) => {
    const w = a.alloc(n, F32, true);
    a.fill(w, i + 1);
    return w;
  });
  a.free(ws[2]);
  for (const i of [0, 1, 3, 4]) assert.ok((a.download(ws[i]) as Float32Array).every((v) => v === i + 1), `weight ${i}`);
  const next = a.alloc(n, F32, true); // packed after the others, never over the freed one: zeroed
  assert.ok((a.download(next) as Float32Array).every((v) => v === 0));
});

test('a process that frees big tensors and drops their handles ends cleanly', (t) => {
  if (!need(t)) return;
  // free() releases the pages; the handles' finalizers (run by gc) and exit must leave them alone. 20 MB each: a
  // second unmap at a null address would reach node's own code (mapped from 4 MB on) and crash.
  const script = `const a = require(${JSON.stringify(ADDON_PATH)});
    let ts = Array.from({ length: 4 }, (_, i) => a.alloc(5_000_001, 0, i % 2 === 0));
    ts.forEach((t) => a.fill(t, 1));
    ts.slice(0, 2).forEach((t) => a.free(t));
    const views = ts.slice(2).map((t) => a.view(t, 0, 1)); // keep the other buffers alive past gc
    ts = null; global.gc();
    setTimeout(() => { global.gc(); process.exit(0); }, 20);`;
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { timeout: 20_000, encoding: 'utf8' });
  assert.equal(r.signal, null, `the process died: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
});
