// World.broadcast across 2 real MPI processes: the root's bytes reach the other rank, from either root
// (rank r starts from bytes all equal to 100 + r; root 0 writes (i * 7 + 1) mod 256 at byte i).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../../helpers/shared.ts';
import { mpiEnv, needMpi } from '../../helpers/mpi.ts';

test('2 ranks: broadcast copies the root rank\'s 128 bytes to every rank, from root 0 and from root 1', (t) => {
  if (!needMpi(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'mpi-bcast-'));
  const script = join(dir, 'rank.ts');
  writeFileSync(script, `
import { joinWorld } from ${JSON.stringify(join(PROJECT_ROOT, 'src/distributed/world.ts'))};
const w = joinWorld();
const fromRoot0 = new Uint8Array(128).fill(100 + w.rank);
if (w.rank === 0) fromRoot0.forEach((_, i) => (fromRoot0[i] = (i * 7 + 1) & 255));
w.broadcast(fromRoot0, 0);
const fromRoot1 = new Uint8Array(3).fill(100 + w.rank);
w.broadcast(fromRoot1, 1);
console.log(JSON.stringify({ rank: w.rank, a: [...fromRoot0], b: [...fromRoot1] }));
w.finish();
`);
  const r = spawnSync('mpirun', ['-np', '2', '--oversubscribe', '--bind-to', 'none', process.execPath, '--import', 'tsx', script], {
    cwd: PROJECT_ROOT, env: mpiEnv(), encoding: 'utf8', timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).sort((x, y) => x.rank - y.rank);
  const pattern = Array.from({ length: 128 }, (_, i) => (i * 7 + 1) & 255); // 1, 8, 15, ..., 122
  assert.deepEqual(lines, [
    { rank: 0, a: pattern, b: [101, 101, 101] },
    { rank: 1, a: pattern, b: [101, 101, 101] },
  ]);
});
