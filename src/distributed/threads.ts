// How many compute threads a rank of a data-parallel run should use on the cpu backend: its launcher's core
// binding when there is one, else an equal share of the machine's cores.

import { availableParallelism, cpus } from 'node:os';

/** Threads for one of `localSize` ranks on this machine. */
export function threadsPerRank(localSize: number, allowed = availableParallelism(), machine = cpus().length): number {
  if (localSize <= 1) return allowed;
  // bound by the launcher (fewer cores allowed than the machine has): that binding is this rank's share
  if (allowed < machine) return allowed;
  return Math.max(1, Math.floor(machine / localSize));
}
