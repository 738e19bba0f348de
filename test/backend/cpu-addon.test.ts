// The cpu addon's process lifecycle: with its worker threads started, a process still ends, both by
// process.exit() (no destructors may block on the workers) and by running out of work.

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
