// Runs every test/**/*.test.ts file with Node's test runner (Node 20 has no glob for --test), node's own report
// first, then the skipped tests counted by reason (scripts/test-summary-reporter.mjs).
// Usage: node scripts/run-tests.mjs [folder-or-file ...]   (default: test/)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Node 20 applies --test-timeout to each file as a whole (and to each test in it): a hang fails its file, and
// the summary names the test that was running. Well above the slowest files measured on 2 busy cores
// (e2e/export-gguf-llama-cpp 44 s, e2e/export 22 s) and typecheck.test.ts's own 300 s limit for tsc.
const TIMEOUT_MS = 20 * 60_000;

function collect(path, out) {
  if (statSync(path).isDirectory()) {
    for (const name of readdirSync(path).sort()) collect(join(path, name), out);
  } else if (path.endsWith('.test.ts')) {
    out.push(path);
  }
  return out;
}

const roots = process.argv.slice(2);
const files = (roots.length ? roots : ['test']).flatMap((root) => collect(root, []));
if (files.length === 0) {
  console.error('no test files found under ' + (roots.join(', ') || 'test/'));
  process.exit(1);
}
const work = mkdtempSync(join(tmpdir(), 'run-tests-'));
const summary = join(work, 'summary.txt');
const reporter = process.stdout.isTTY ? 'spec' : 'tap'; // node's default
const result = spawnSync(process.execPath, [
  '--import', 'tsx', '--test', '--test-concurrency=2', `--test-timeout=${TIMEOUT_MS}`,
  `--test-reporter=${reporter}`, '--test-reporter-destination=stdout',
  `--test-reporter=${fileURLToPath(new URL('test-summary-reporter.mjs', import.meta.url))}`, `--test-reporter-destination=${summary}`,
  ...files,
], { stdio: 'inherit', env: { ...process.env, XDG_CACHE_HOME: join(work, 'cache') } }); // the cpu backend's GEMM choice: not the user's cache
try {
  process.stdout.write(readFileSync(summary, 'utf8'));
} catch {
  console.log('# no skip summary: the test runner did not finish its report');
}
rmSync(work, { recursive: true, force: true });
process.exit(result.status ?? 1);
