// One line naming the machine a CPU benchmark ran on (CPU model, cores, memory, the load when it started), for the
// tables and JSON the benchmarks write. Not a system profiler.

import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';

export function machine(): string {
  return `${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
    `load average ${loadavg()[0]!.toFixed(1)} at start`;
}
