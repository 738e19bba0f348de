// How many compute threads a rank of a data-parallel run should use on the cpu backend: its launcher's core
// binding when there is one, else an equal share of the machine's cores.

import { availableParallelism, cpus } from 'node:os';
import { CpuBackend } from '../backends/native/cpu.ts';
import type { Backend } from '../engine/backend.ts';
import type { World } from './world.ts';

/** Threads for one of `localSize` ranks on this machine. */
export function threadsPerRank(localSize: number, allowed = availableParallelism(), machine = cpus().length): number {
  if (localSize <= 1) return allowed;
  // bound by the launcher (fewer cores allowed than the machine has): that binding is this rank's share
  if (allowed < machine) return allowed;
  return Math.max(1, Math.floor(machine / localSize));
}

/** On the cpu backend, a rank of several on one machine uses its share of the cores (ALPACA_CPU_THREADS wins). */
export function shareCoresAmongRanks(be: Backend, world: World): void {
  if (world.localSize <= 1 || !(be instanceof CpuBackend) || process.env.ALPACA_CPU_THREADS !== undefined) return;
  be.addon.setThreads(threadsPerRank(world.localSize));
}
