// Running a script under mpirun from a test: whether MPI is here (skip with the reason, or fail under
// CI=true), and the environment that lets Open MPI run as root in containers.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { loadMpiAddon } from '../../src/distributed/mpi-addon.ts';
import { PROJECT_ROOT } from './shared.ts';

/** True when mpirun and the addon are here; else skips (fails under CI=true) with the reason. */
export function needMpi(t: TestContext): boolean {
  const addon = loadMpiAddon();
  const reason = spawnSync('mpirun', ['--version'], { stdio: 'ignore' }).status !== 0
    ? 'mpirun was not found (apt-get install openmpi-bin libopenmpi-dev)'
    : 'unavailable' in addon ? addon.unavailable : null;
  if (reason === null) return true;
  if (process.env.CI === 'true') throw new Error(reason);
  t.skip(reason);
  return false;
}

/** The environment for mpirun: ours, plus Open MPI's consent to run as root (containers, CI). */
export function mpiEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_btl_vader_single_copy_mechanism: 'none', ...extra };
}

/**
 * Runs `body` (TypeScript with `w`, the joined World, in scope) in 2 ranks under mpirun; each rank prints one
 * JSON line with its `rank`. Returns the lines sorted by rank.
 */
export function runTwoRanks(body: string): { rank: number }[] {
  const script = join(mkdtempSync(join(tmpdir(), 'mpi-')), 'rank.ts');
  writeFileSync(script, `import { joinWorld } from ${JSON.stringify(join(PROJECT_ROOT, 'src/distributed/world.ts'))};
const w = joinWorld();
${body}
w.finish();
`);
  const r = spawnSync('mpirun', ['-np', '2', '--oversubscribe', '--bind-to', 'none', process.execPath, '--import', 'tsx', script], {
    cwd: PROJECT_ROOT, env: mpiEnv(), encoding: 'utf8', timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l)).sort((x, y) => x.rank - y.rank);
}
