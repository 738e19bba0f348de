// Builds the MPI addon (build/Release/alpaca_mpi.node) with node-gyp at `npm install` when Open MPI's
// compiler wrapper (mpicxx) is installed; without it the build is skipped and data-parallel training says
// how to install MPI. Not the loader (src/distributed/mpi-addon.ts).

//   node native/mpi/build.mjs [--strict]     --strict (or CI=true): exit 1 when the build fails or MPI is missing
// Environment: ALPACA_SKIP_NATIVE=1 skips the build.

import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNodeDir, findNodeGyp } from '../node-gyp.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const strict = process.argv.includes('--strict') || process.env.CI === 'true';

function give_up(reason) {
  console.log(`alpaca-lora: the MPI addon was not built: ${reason}. Data-parallel training (mpirun, --nproc_per_node) is unavailable.`);
  process.exit(strict ? 1 : 0);
}

if (process.env.ALPACA_SKIP_NATIVE === '1') process.exit(0);
if (spawnSync('mpicxx', ['--showme:version'], { stdio: 'ignore' }).status !== 0) {
  give_up('Open MPI was not found: install it (apt-get install openmpi-bin libopenmpi-dev), then run node native/mpi/build.mjs');
}
const gyp = findNodeGyp();
if (!gyp) give_up('node-gyp was not found (it ships with npm)');
const dir = findNodeDir();
if (!dir) give_up(`no Node.js headers (include/node/node_api.h) next to ${process.execPath}`);
console.log('alpaca-lora: building the MPI addon (native/mpi) ...');
const result = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${dir}`, '--directory', here], { stdio: ['ignore', 'inherit', 'inherit'] });
if (result.status !== 0) give_up(`node-gyp failed (exit ${result.status ?? result.signal}; its messages are above)`);
console.log('alpaca-lora: MPI addon built.');
