// Builds the native CPU addon (build/Release/alpaca_cpu.node) with node-gyp at `npm install`; a failed build
// never fails the install (except for missing OpenBLAS under CI=true): it says why, and `--backend auto` uses js.
// Not the loader (cpu-addon.ts).

//   node native/cpu/build.mjs [--strict]     --strict: exit 1 when the build fails
// Environment: ALPACA_SKIP_NATIVE=1 skips the build; ALPACA_NO_OPENBLAS=1 builds without OpenBLAS; under
// CI=true a build that finds no OpenBLAS fails.

import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNodeDir, findNodeGyp } from '../node-gyp.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const strict = process.argv.includes('--strict');

function give_up(reason) {
  console.log(`alpaca-lora: the native cpu backend was not built: ${reason}. The js backend will be used (--backend auto).`);
  process.exit(strict ? 1 : 0);
}

if (process.env.ALPACA_SKIP_NATIVE === '1') give_up('ALPACA_SKIP_NATIVE=1');
const cxx = process.env.CXX ?? 'c++';
if (spawnSync(cxx, ['--version'], { stdio: 'ignore' }).status !== 0) give_up(`no C++ compiler (${cxx}) was found; install g++ (apt-get install g++)`);
const gyp = findNodeGyp();
if (!gyp) give_up('node-gyp was not found (it ships with npm)');
const dir = findNodeDir();
if (!dir) give_up(`no Node.js headers (include/node/node_api.h) next to ${process.execPath}`);
const blas = spawnSync('sh', [join(here, 'detect-openblas.sh')], { encoding: 'utf8' }).stdout.trim() === '1';
if (!blas && process.env.CI === 'true' && process.env.ALPACA_NO_OPENBLAS !== '1') {
  // CI tests both GEMM kernels: a build without OpenBLAS would leave one of them untested.
  console.error('alpaca-lora: CI=true but OpenBLAS was not found: install libopenblas-dev (or set ALPACA_NO_OPENBLAS=1).');
  process.exit(1);
}
console.log('alpaca-lora: building the native cpu backend (native/cpu) ...');
const args = [gyp, 'rebuild', '--jobs', 'max', `--nodedir=${dir}`, '--directory', here];
const result = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
if (result.status !== 0) give_up(`node-gyp failed (exit ${result.status ?? result.signal}; its messages are above)`);
console.log(`alpaca-lora: native cpu backend built${blas ? ' with OpenBLAS' : ' with its own GEMM (install libopenblas-dev for OpenBLAS)'}.`);
