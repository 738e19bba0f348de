// The CUDA addon's NCCL bindings where no GPU is needed: loading the .node file starts no device, so on a
// machine without libnccl.so.2 the bindings must say so by name, and refuse bad arguments, in one line.
// (The all-reduce itself needs 2 GPUs; nothing here runs it.)

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { ADDON_PATH, type CudaAddon } from '../../src/backends/native/cuda-addon.ts';

const hasNccl = spawnSync('sh', ['-c', 'ldconfig -p | grep -q libnccl.so.2']).status === 0;

test('without libnccl.so.2: ncclLoad and ncclUniqueId name it; ncclInit and ncclAllReduceSum refuse bad calls', (t) => {
  if (!existsSync(ADDON_PATH)) return t.skip('the CUDA addon is not built (node native/cuda/build.mjs)');
  if (hasNccl || process.env.ALPACA_NCCL) return t.skip('libnccl.so.2 is installed here: this case is for machines without it');
  const addon = createRequire(import.meta.url)(ADDON_PATH) as CudaAddon;
  assert.match(addon.ncclLoad(), /^cannot load libnccl\.so\.2 \(install NCCL, or set ALPACA_NCCL to its path\)/);
  assert.throws(() => addon.ncclUniqueId(), /cannot load libnccl\.so\.2/);
  assert.throws(() => addon.ncclInit(new Uint8Array(3), 2, 0), /the id is not a Uint8Array of 128 bytes/);
  assert.throws(() => addon.ncclAllReduceSum(0, 4), /ncclAllReduceSum before ncclInit/);
});
