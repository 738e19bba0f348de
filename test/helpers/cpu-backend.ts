// The cpu backend for the parity tests, or why there is none: needCpu marks a test skipped (and fails it under
// CI=true, where .ci/run builds the addon). Also the uniform test data those tests draw by the million.

import type { TestContext } from 'node:test';
import { loadCpuAddon } from '../../src/backends/native/cpu-addon.ts';
import { CpuBackend } from '../../src/backends/native/cpu.ts';
import type { Rng } from '../../src/engine/random.ts';

const addon = loadCpuAddon();
export const cpuBackend: CpuBackend | null = 'unavailable' in addon ? null : new CpuBackend(addon);

/** The cpu backend, or null after marking the test skipped. */
export function needCpu(t: TestContext): CpuBackend | null {
  if (cpuBackend) return cpuBackend;
  const reason = `the cpu backend is not available: ${'unavailable' in addon ? addon.unavailable : ''}`;
  if (process.env.CI === 'true') throw new Error(reason);
  console.log(`# skip: ${reason}`);
  t.skip(reason);
  return null;
}

/** Uniform values of standard deviation `scale` (cheaper to draw than normal ones). */
export function uniformValues(rng: Rng, n: number, scale = 1): Float32Array {
  const v = new Float32Array(n), a = 2 * Math.sqrt(3) * scale;
  for (let i = 0; i < n; i++) v[i] = (rng.next() - 0.5) * a;
  return v;
}
