// Builds the CUDA addon (native/cuda/*.cu -> native/cuda/build/alpaca_cuda.node) with nvcc alone, no
// node-gyp: cuBLASLt is opened at run time (dlopen), so only the static CUDA runtime is linked and the
// build needs neither the cuBLAS headers nor a GPU. npm's install script runs it; without nvcc it says so
// and exits 0 (the cuda backend is then unavailable and `--backend auto` takes cpu or js). Objects are
// rebuilt only when older than their .cu, a header or this script. Not the loader (cuda-addon.ts).
//   node native/cuda/build.mjs [--strict] [--force]   --strict: exit 1 when nvcc is there but the build fails
// Environment: NVCC (the compiler), CUDA_ARCHS (default "80,90a"), NODE_API_HEADERS (folder with node_api.h),
// ALPACA_SKIP_NATIVE=1 skips the build.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const src = dirname(fileURLToPath(import.meta.url));
const build = join(src, 'build');
const output = join(build, 'alpaca_cuda.node');
const strict = process.argv.includes('--strict');
const force = process.argv.includes('--force');

function stop(message, ok) {
  console.log(`alpaca-lora: ${message}`);
  process.exit(ok || !strict ? 0 : 1);
}

function findNvcc() {
  const candidates = [process.env.NVCC, 'nvcc', process.env.CUDA_HOME && join(process.env.CUDA_HOME, 'bin', 'nvcc'), '/usr/local/cuda/bin/nvcc'];
  for (const c of candidates) {
    if (c && spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0) return c;
  }
  return null;
}

function findHeaders() {
  const candidates = [process.env.NODE_API_HEADERS, resolve(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node'];
  return candidates.find((d) => d && existsSync(join(d, 'node_api.h'))) ?? null;
}

function run(cmd, args) {
  return new Promise((done) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('close', (code) => done(code === 0));
    p.on('error', () => done(false));
  });
}

const nvcc = findNvcc();
if (process.env.ALPACA_SKIP_NATIVE === '1') stop('the cuda backend was not built: ALPACA_SKIP_NATIVE=1', true);
if (!nvcc) stop('the cuda backend was not built: nvcc was not found (set NVCC or CUDA_HOME); --backend auto uses cpu or js', true);
const headers = findHeaders();
if (!headers) stop('the cuda backend was not built: no node_api.h was found (set NODE_API_HEADERS to the folder holding it)', false);

const archs = (process.env.CUDA_ARCHS ?? '80,90a').split(',').map((a) => a.trim()).filter(Boolean);
const gencode = archs.flatMap((a) => ['-gencode', `arch=compute_${a},code=sm_${a}`]);
const ptx = archs[0] ? ['-gencode', `arch=compute_${archs[0]},code=compute_${archs[0]}`] : [];
const flags = ['-O3', '-std=c++17', ...gencode, ...ptx, '-Xcompiler', '-fPIC', `-I${headers}`, '-DNODE_GYP_MODULE_NAME=alpaca_cuda'];

const mtime = (f) => (existsSync(f) ? statSync(f).mtimeMs : 0);
const sources = readdirSync(src).filter((f) => f.endsWith('.cu')).sort();
const objectOf = (f) => join(build, `obj-${archs.join('-')}`, f.replace(/\.cu$/, '.o'));
const stamp = join(build, 'alpaca_cuda.archs'); // the architectures the addon was linked for
// an object is stale when older than its .cu, any header or this script
const shared = Math.max(...readdirSync(src).filter((f) => f.endsWith('.cuh')).map((f) => mtime(join(src, f))), mtime(fileURLToPath(import.meta.url)));
const stale = sources.filter((f) => force || mtime(objectOf(f)) <= Math.max(shared, mtime(join(src, f))));
const linked = existsSync(stamp) && readFileSync(stamp, 'utf8') === archs.join(',');
if (stale.length === 0 && linked && mtime(output) > Math.max(...sources.map((f) => mtime(objectOf(f))))) {
  stop(`the cuda backend is up to date (${output})`, true);
}

mkdirSync(dirname(objectOf(sources[0] ?? 'x.cu')), { recursive: true });
console.log(`alpaca-lora: building the cuda backend (${nvcc}, sm_${archs.join(', sm_')}): ${stale.length} of ${sources.length} files ...`);
const started = Date.now();
const queue = [...stale];
const objects = sources.map(objectOf);
let failed = false;
async function worker() {
  for (let f = queue.shift(); f && !failed; f = queue.shift()) {
    if (!(await run(nvcc, [...flags, '-c', join(src, f), '-o', objectOf(f)]))) {
      console.log(`alpaca-lora: compiling native/cuda/${f} failed`);
      failed = true;
    }
  }
}
await Promise.all(Array.from({ length: Math.max(1, Math.min(availableParallelism(), stale.length)) }, worker));
if (failed) stop('the cuda backend was not built: nvcc failed (its messages are above)', false);
const partial = `${output}.partial`;
if (!(await run(nvcc, ['-shared', ...gencode, ...objects, '-o', partial, '-ldl']))) stop('the cuda backend was not built: linking failed', false);
renameSync(partial, output);
writeFileSync(stamp, archs.join(','));
console.log(`alpaca-lora: cuda backend built in ${((Date.now() - started) / 1000).toFixed(0)} s (${output})`);
