// The backends a golden test runs on: js always, and each native backend that is built here. Under
// CI=true (where .ci/run builds it) a missing cpu addon is an error rather than a silent js-only run.
// cuda runs in its f32 precision (tight tolerances) when the addon loads and a GPU answers; otherwise the suite
// gets one skipped test `cuda` that says why (CI has none; ALPACA_REQUIRE_CUDA=1, set on the GPU machine, makes
// its absence an error).

import { test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import { loadCpuAddon } from '../../src/backends/native/cpu-addon.ts';
import { CpuBackend } from '../../src/backends/native/cpu.ts';
import { loadCudaAddon } from '../../src/backends/native/cuda-addon.ts';
import { CudaBackend } from '../../src/backends/native/cuda.ts';
import type { BackendName } from '../../src/backends/select.ts';
import type { Backend } from '../../src/engine/backend.ts';

export interface TestBackend {
  name: Exclude<BackendName, 'auto'>;
  make(): Backend;
}

/** The backends to run a golden suite on; registers the skipped `cuda` test when there is no cuda backend here. */
export function testBackends(): TestBackend[] {
  const backends: TestBackend[] = [{ name: 'js', make: () => new JsBackend() }];
  const addon = loadCpuAddon();
  if (!('unavailable' in addon)) backends.push({ name: 'cpu', make: () => new CpuBackend(addon) });
  else if (process.env.CI === 'true') throw new Error(`the cpu backend is not available under CI: ${addon.unavailable}`);
  const cuda = loadCudaAddon();
  if (!('unavailable' in cuda)) backends.push({ name: 'cuda', make: () => new CudaBackend(cuda, 'f32') });
  else if (process.env.ALPACA_REQUIRE_CUDA === '1') throw new Error(`the cuda backend is not available: ${cuda.unavailable}`);
  else test('cuda', (t) => t.skip(`no CUDA backend here: ${cuda.unavailable}`));
  return backends;
}
