// World.broadcast across 2 real MPI processes: the root's bytes reach the other rank, from either root
// (rank r starts from bytes all equal to 100 + r; root 0 writes (i * 7 + 1) mod 256 at byte i).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { needMpi, runTwoRanks } from '../../helpers/mpi.ts';

test('2 ranks: broadcast copies the root rank\'s 128 bytes to every rank, from root 0 and from root 1', (t) => {
  if (!needMpi(t)) return;
  const lines = runTwoRanks(`
const fromRoot0 = new Uint8Array(128).fill(100 + w.rank);
if (w.rank === 0) fromRoot0.forEach((_, i) => (fromRoot0[i] = (i * 7 + 1) & 255));
w.broadcast(fromRoot0, 0);
const fromRoot1 = new Uint8Array(3).fill(100 + w.rank);
w.broadcast(fromRoot1, 1);
console.log(JSON.stringify({ rank: w.rank, a: [...fromRoot0], b: [...fromRoot1] }));`);
  const pattern = Array.from({ length: 128 }, (_, i) => (i * 7 + 1) & 255); // 1, 8, 15, ..., 122
  assert.deepEqual(lines, [
    { rank: 0, a: pattern, b: [101, 101, 101] },
    { rank: 1, a: pattern, b: [101, 101, 101] },
  ]);
});
