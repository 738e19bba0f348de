// The MPI addon across 2 real processes: rank and size, and sums of float32/float64 arrays (expected
// sums written by hand: rank r contributes r + 1 and r * 0.5 at every element).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { needMpi, runTwoRanks } from '../../helpers/mpi.ts';

test('2 ranks join one world and all-reduce float32 and float64 arrays', (t) => {
  if (!needMpi(t)) return;
  const lines = runTwoRanks(`
const a = new Float32Array(1000).fill(w.rank + 1);
const b = new Float64Array(3).fill(w.rank * 0.5);
w.allReduceSum(a);
w.allReduceSum(b);
console.log(JSON.stringify({ rank: w.rank, size: w.size, env: [process.env.WORLD_SIZE, process.env.RANK, process.env.LOCAL_RANK], a: [a[0], a[999]], b: [...b] }));`);
  assert.deepEqual(lines, [
    { rank: 0, size: 2, env: ['2', '0', '0'], a: [3, 3], b: [0.5, 0.5, 0.5] },
    { rank: 1, size: 2, env: ['2', '1', '1'], a: [3, 3], b: [0.5, 0.5, 0.5] },
  ]);
});
