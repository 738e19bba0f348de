// The data-parallel launcher's pure parts: the argv a rank gets, mpirun's placement arguments, threads per
// rank, and the world a process joins without MPI (expectations written by hand from Open MPI's flags).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mpirunArgs, withoutNprocFlag } from '../../../src/distributed/launch.ts';
import { threadsPerRank } from '../../../src/distributed/threads.ts';
import { gpuOfLocalRank, joinWorld, launchedByMpi } from '../../../src/distributed/world.ts';

test('the ranks are launched without --nproc_per_node, in either spelling', () => {
  assert.deepEqual(withoutNprocFlag(['finetune', '--nproc_per_node', '2', '--data_path', 'd.json']), ['finetune', '--data_path', 'd.json']);
  assert.deepEqual(withoutNprocFlag(['finetune', '--nproc-per-node=4', '--x']), ['finetune', '--x']);
});

test('mpirun binds each rank to its share of the cores, or oversubscribes when there are more ranks than cores', () => {
  assert.deepEqual(mpirunArgs(2, 16, ['node', 'cli'], false), ['-np', '2', '--map-by', 'slot:PE=8', '--bind-to', 'core', 'node', 'cli']);
  assert.deepEqual(mpirunArgs(4, 2, ['node'], true), ['-np', '4', '--oversubscribe', '--bind-to', 'none', '--allow-run-as-root', 'node']);
});

test('threads per rank: the launcher binding when there is one, else an equal share', () => {
  assert.equal(threadsPerRank(1, 16, 16), 16);
  assert.equal(threadsPerRank(2, 8, 16), 8); // bound to 8 cores by mpirun
  assert.equal(threadsPerRank(4, 16, 16), 4); // unbound: a quarter each
  assert.equal(threadsPerRank(4, 2, 2), 1);
});

test('without an MPI launcher a process is a world of one, and WORLD_SIZE > 1 says how to launch', () => {
  assert.equal(launchedByMpi({}), false);
  assert.equal(launchedByMpi({ OMPI_COMM_WORLD_SIZE: '2' }), true);
  assert.throws(() => joinWorld({ WORLD_SIZE: '2' }), /WORLD_SIZE=2 but this process was not started by mpirun: run `mpirun -np 2/);
  assert.throws(() => joinWorld({ WORLD_SIZE: 'two' }), /WORLD_SIZE=two is not a positive whole number/);
  const w = joinWorld({ WORLD_SIZE: '1' });
  assert.equal(w.size, 1);
  assert.equal(w.rank, 0);
  const buf = new Float32Array([1, 2]);
  w.allReduceSum(buf);
  assert.deepEqual([...buf], [1, 2]);
});

test('each rank on a machine takes its own GPU', () => {
  assert.equal(gpuOfLocalRank(undefined, 1), '1');
  assert.equal(gpuOfLocalRank('4,5,6,7', 2), '6');
  assert.throws(() => gpuOfLocalRank('0,1', 2), /CUDA_VISIBLE_DEVICES=0,1 names 2 GPUs but this machine runs more ranks/);
});
