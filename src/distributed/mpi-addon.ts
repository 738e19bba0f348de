// Finds and loads the MPI addon (native/mpi/build/Release/alpaca_mpi.node, built by `npm install` when Open MPI
// is installed) and types its exports. Not the world a run sees (world.ts).

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface MpiAddon {
  init(): { rank: number; size: number; localRank: number; localSize: number };
  /** In place: every rank's array becomes the elementwise sum over all ranks. */
  allreduceSum(buf: Float32Array | Float64Array): void;
  /** In place: root's bytes copied into every rank's array (the same length everywhere). */
  broadcast(buf: Uint8Array, root: number): void;
  barrier(): void;
  abort(code: number): never;
  finalize(): void;
}

const ADDON_PATH = fileURLToPath(new URL('../../native/mpi/build/Release/alpaca_mpi.node', import.meta.url));

export const INSTALL_MPI = 'install Open MPI (apt-get install openmpi-bin libopenmpi-dev) and rebuild (node native/mpi/build.mjs)';

/** The addon, or why it cannot be loaded. */
export function loadMpiAddon(): MpiAddon | { unavailable: string } {
  if (!existsSync(ADDON_PATH)) return { unavailable: `the MPI addon is not built: ${INSTALL_MPI}` };
  try {
    return createRequire(import.meta.url)(ADDON_PATH) as MpiAddon;
  } catch (err) {
    return { unavailable: `loading ${ADDON_PATH} failed (${err instanceof Error ? err.message : String(err)}): ${INSTALL_MPI}` };
  }
}
