// The cpu addon's thread pool alone (native/cpu/src/pool.cpp, no Node): native/cpu/test/pool-stress.cpp runs
// hundreds of thousands of jobs of varying sizes and grains with 2 threads and with more threads than CPUs,
// every item exactly once, under a watchdog; built plainly and with -fsanitize=thread. The pool before its
// fix failed the plain build within two seconds in three runs out of three (a chunk run twice, or a hang).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { PROJECT_ROOT } from '../helpers/shared.ts';

const sources = ['native/cpu/test/pool-stress.cpp', 'native/cpu/src/pool.cpp'].map((p) => join(PROJECT_ROOT, p));

// Compiles the stress program; null (after a skip, or a throw under CI) when this machine cannot.
function build(t: TestContext, flags: string[], what: string): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'alpaca-pool-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const exe = join(dir, 'pool-stress');
  const cxx = process.env.CXX ?? 'g++';
  const r = spawnSync(cxx, ['-std=gnu++17', '-pthread', ...flags, ...sources, '-o', exe], { encoding: 'utf8' });
  if (r.status === 0) return exe;
  const reason = `${cxx} could not build the pool stress test ${what}: ${(r.stderr || String(r.error)).split('\n')[0]}`;
  if (process.env.CI === 'true') throw new Error(reason);
  t.skip(reason);
  return null;
}

function stress(exe: string, seconds: number) {
  const r = spawnSync(exe, [String(seconds), '2', '5'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.signal, null, `the stress test was killed (${r.signal}): ${r.stderr}`);
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.doesNotMatch(r.stderr, /ThreadSanitizer/, r.stderr);
  const jobs = [...r.stdout.matchAll(/ok: (\d+) jobs with (\d+) threads \(highest thread id seen (\d+)\)/g)];
  assert.equal(jobs.length, 2, r.stdout);
  for (const [, , threads, highest] of jobs) assert.equal(Number(highest), Number(threads) - 1, `every worker ran a chunk: ${r.stdout}`);
  console.log(`${r.stdout.trim().replace(/\n/g, '; ')}`);
}

test('the pool runs every item of every job exactly once and never hangs', (t) => {
  const exe = build(t, ['-O2'], 'with g++ -O2');
  if (exe) stress(exe, 2);
});

test('the pool is clean under thread sanitizer', (t) => {
  const exe = build(t, ['-O1', '-g', '-fsanitize=thread'], 'with -fsanitize=thread');
  if (exe) stress(exe, 1.5);
});
