// The CUDA backend for tests, or the reason there is none. Without a GPU (or without the built addon) the
// CUDA tests skip with that reason printed; CI never has a GPU, so under CI=true they skip as well and
// never fail. ALPACA_REQUIRE_CUDA=1 (set by scripts/device-cuda.sh on the GPU machine) makes it a failure.

import type { TestContext } from 'node:test';
import { createCudaBackend, type CudaBackend, type CudaPrecision } from '../../src/backends/native/cuda.ts';

/** A CUDA backend, or null after marking the test skipped (throws instead under ALPACA_REQUIRE_CUDA=1). */
export function needCuda(t: TestContext, precision: CudaPrecision): CudaBackend | null {
  const be = createCudaBackend(precision);
  if (!('unavailable' in be)) return be;
  const reason = `no CUDA backend here: ${be.unavailable}`;
  if (process.env.ALPACA_REQUIRE_CUDA === '1') throw new Error(reason);
  console.log(`# skip: ${reason}`);
  t.skip(reason);
  return null;
}

/** True when a CUDA backend can be created here (no skip, no throw). */
export function cudaAvailable(): boolean {
  return !('unavailable' in createCudaBackend('f32'));
}
