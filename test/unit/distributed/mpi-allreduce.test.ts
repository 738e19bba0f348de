// The MPI addon across 2 real processes: rank and size, and sums of float32/float64 arrays (expected
// sums written by hand: rank r contributes r + 1 and r * 0.5 at every element).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../../helpers/shared.ts';
import { mpiEnv, needMpi } from '../../helpers/mpi.ts';

test('2 ranks join one world and all-reduce float32 and float64 arrays', (t) => {
  if (!needMpi(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'mpi-'));
  const script = join(dir, 'rank.ts');
  writeFileSync(script, `
import { joinWorld } from ${JSON.stringify(join(PROJECT_ROOT, 'src/distributed/world.ts'))};
const w = joinWorld();
const a = new Float32Array(1000).fill(w.rank + 1);
const b = new Float64Array(3).fill(w.rank * 0.5);
w.allReduceSum(a);
w.allReduceSum(b);
console.log(JSON.stringify({ rank: w.rank, size: w.size, env: [process.env.WORLD_SIZE, process.env.RANK, process.env.LOCAL_RANK], a: [a[0], a[999]], b: [...b] }));
w.finish();
`);
  const r = spawnSync('mpirun', ['-np', '2', '--oversubscribe', '--bind-to', 'none', process.execPath, '--import', 'tsx', script], {
    cwd: PROJECT_ROOT, env: mpiEnv(), encoding: 'utf8', timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).sort((x, y) => x.rank - y.rank);
  assert.deepEqual(lines, [
    { rank: 0, size: 2, env: ['2', '0', '0'], a: [3, 3], b: [0.5, 0.5, 0.5] },
    { rank: 1, size: 2, env: ['2', '1', '1'], a: [3, 3], b: [0.5, 0.5, 0.5] },
  ]);
});
