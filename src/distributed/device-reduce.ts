// Which way a rank's gradients travel in an all-reduce: not at all (a world of one), on the device through
// the backend's collectives (cuda: NCCL, its group id made by rank 0 and broadcast over MPI), or through host
// memory over MPI. Decided once per backend, by every rank together. Not the reduction itself (gradients.ts).

import type { Backend, DeviceCollectives } from '../engine/backend.ts';
import type { World } from './world.ts';

export type GradientPath = { kind: 'single' } | { kind: 'device'; collectives: DeviceCollectives } | { kind: 'host' };

const chosen = new WeakMap<Backend, GradientPath>();

/**
 * The path for `be` in `world`; the first call per backend is collective (every rank makes it at the same
 * step). All ranks take the device path only when every one can load the library; else rank 0 says once
 * why they use the host path.
 */
export function gradientPath(be: Backend, world: World, log: (line: string) => void = (l) => console.error(l)): GradientPath {
  const known = chosen.get(be);
  if (known) return known;
  const path = choose(be, world, log);
  chosen.set(be, path);
  return path;
}

function choose(be: Backend, world: World, log: (line: string) => void): GradientPath {
  if (world.size === 1) return { kind: 'single' };
  const collectives = be.collectives;
  if (!collectives) return { kind: 'host' };
  const why = collectives.available();
  const missing = new Float64Array([why ? 1 : 0]);
  world.allReduceSum(missing);
  if (missing[0]! > 0) {
    if (world.rank === 0) {
      log(`alpaca-lora: NCCL is unavailable on ${missing[0]} of ${world.size} ranks${why ? ` (rank 0: ${why})` : ''}; gradients are all-reduced through host memory over MPI`);
    }
    return { kind: 'host' };
  }
  const id = world.rank === 0 ? collectives.uniqueId() : new Uint8Array(128);
  world.broadcast(id, 0);
  collectives.init(id, world.size, world.rank);
  return { kind: 'device', collectives };
}
