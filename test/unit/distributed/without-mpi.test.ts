// Without Open MPI installed: the addon's build is skipped with how to install it (and fails under CI=true,
// where MPI must be there), and --nproc_per_node says mpirun is missing. PATH without MPI stands for a machine without it.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../../helpers/cli.ts';
import { PROJECT_ROOT } from '../../helpers/shared.ts';

const noMpi = { PATH: '/nonexistent' };

test('the MPI addon build is skipped with install instructions, and fails under CI=true', () => {
  const build = (ci: string) => spawnSync(process.execPath, [join(PROJECT_ROOT, 'native', 'mpi', 'build.mjs')], {
    env: { ...process.env, ...noMpi, CI: ci }, encoding: 'utf8',
  });
  const relaxed = build('false');
  assert.equal(relaxed.status, 0);
  assert.match(relaxed.stdout, /the MPI addon was not built: Open MPI was not found: install it \(apt-get install openmpi-bin libopenmpi-dev\)/);
  assert.equal(build('true').status, 1);
});

test('--nproc_per_node without mpirun says how to get it', () => {
  const r = runCli(['finetune', '--base_model', 'x', '--nproc_per_node', '2'], { env: noMpi });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^error: --nproc_per_node 2 needs mpirun, which was not found: install Open MPI \(apt-get install openmpi-bin libopenmpi-dev\) or run one process$/m);
});
