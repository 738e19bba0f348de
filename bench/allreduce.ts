// All-reduce time between data-parallel ranks on this machine, for the gradient sizes of a LoRA run
// (7B q,v r8: 4.19 M float32 = 16.8 MB) and a few others. Run it under mpirun:
//   mpirun -np 2 node --import tsx bench/allreduce.ts [--json bench/results/allreduce.json]
// Rank 0 prints the median and best of 20 timed all-reduces per size (after 3 warm-ups).

import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import { joinWorld } from '../src/distributed/world.ts';
import { flag } from './flags.ts';

const world = joinWorld();
const sizes = [
  { label: '7B LoRA q,v r8 grads', floats: 32 * 2 * 2 * 8 * 4096 },
  { label: '7B LoRA all-linear r8', floats: 32 * 8 * (4 * 2 * 4096 + 3 * (4096 + 11008)) },
  { label: '64 MiB', floats: 16 * 2 ** 20 },
];
const rows = [];
for (const s of sizes) {
  const buf = new Float32Array(s.floats).fill(1);
  const times: number[] = [];
  for (let i = 0; i < 23; i++) {
    const t0 = performance.now();
    world.allReduceSum(buf);
    if (i >= 3) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  rows.push({ case: s.label, mb: (s.floats * 4) / 1e6, median_ms: times[10]!, best_ms: times[0]!, gb_per_s: (s.floats * 4) / 1e6 / times[10]! });
}
if (world.rank === 0) {
  const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores for this rank, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${world.size} ranks on one machine (Open MPI, shared memory)`;
  console.log(machine);
  console.table(rows.map((r) => ({ ...r, mb: r.mb.toFixed(1), median_ms: r.median_ms.toFixed(2), best_ms: r.best_ms.toFixed(2), gb_per_s: r.gb_per_s.toFixed(2) })));
  const jsonPath = flag('json', '');
  if (jsonPath) {
    const out = resolve(jsonPath);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify({ machine, ranks: world.size, rows }, null, 2) + '\n');
  }
}
world.finish();
