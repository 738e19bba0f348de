// The cpu addon's thread pool: exact results with more threads than CPUs, and a process with workers
// started still ends, by process.exit() (no destructor may block on the workers) or by running out of work.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { ADDON_PATH, loadCpuAddon } from '../../src/backends/native/cpu-addon.ts';

const addon = loadCpuAddon();

for (const [how, code] of [['process.exit(3)', 3], ['', 0]] as const) {
  test(`a process with the addon loaded ends ${how ? `on ${how}` : 'when its work is done'}`, (t) => {
    if ('unavailable' in addon) {
      if (process.env.CI === 'true') throw new Error(addon.unavailable);
      t.skip(addon.unavailable);
      return;
    }
    const script = `const a = require(${JSON.stringify(ADDON_PATH)}); a.setThreads(4); const t = a.alloc(1 << 20, 0); a.fill(t, 1); ${how}`;
    const r = spawnSync(process.execPath, ['-e', script], { timeout: 20_000 });
    assert.equal(r.signal, null, 'the process had to be killed');
    assert.equal(r.status, code);
  });
}

test('parallel ops with more threads than CPUs give exact results', (t) => {
  if ('unavailable' in addon) {
    if (process.env.CI === 'true') throw new Error(addon.unavailable);
    t.skip(addon.unavailable);
    return;
  }
  addon.setThreads(8);
  try {
    const sizes = [1 << 20, 300_001, 70_000];
    const xs = sizes.map((n) => addon.alloc(n, 0)), ys = sizes.map((n) => addon.alloc(n, 0));
    xs.forEach((x) => addon.fill(x, 1));
    ys.forEach((y) => addon.fill(y, 0));
    for (let i = 0; i < 200; i++) sizes.forEach((_, k) => addon.axpy(ys[k]!, xs[k]!, 1));
    for (const y of ys) assert.ok((addon.download(y) as Float32Array).every((v) => v === 200));
  } finally {
    addon.setThreads(0);
  }
});
