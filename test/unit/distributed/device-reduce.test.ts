// Which path gradients take (device-reduce.ts) and what allReduceGradients then does, with a fake backend
// and a fake world standing for "this rank" of a 2-rank job: the other rank is simulated inside the fake
// world's allReduceSum (adds what the other rank holds) and broadcast (root 0's id bytes arrive).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backend, DeviceCollectives } from '../../../src/engine/backend.ts';
import type { Tensor } from '../../../src/engine/tensor.ts';
import { gradientPath } from '../../../src/distributed/device-reduce.ts';
import { allReduceGradients } from '../../../src/distributed/gradients.ts';
import { SINGLE_PROCESS, type World } from '../../../src/distributed/world.ts';

const ROOT_ID = new Uint8Array(128).fill(42);

/** Rank `rank` of 2; the other rank adds `otherMissing` to the first sum (the NCCL availability vote), 10 to every
 * later float64 sum (the loss) and 1 to each float32 element (host-path gradients). */
function fakeWorld(rank: number, otherMissing: number, calls: string[]): World {
  return {
    rank, size: 2, localRank: rank, localSize: 2,
    allReduceSum(buf) {
      calls.push(`allReduceSum(${buf.constructor.name}[${buf.length}])`);
      if (buf instanceof Float64Array) buf[0]! += buf.length === 1 && calls.length === 1 ? otherMissing : 10;
      else for (let i = 0; i < buf.length; i++) buf[i]! += 1;
    },
    broadcast(buf, root) {
      calls.push(`broadcast(${buf.length}, ${root})`);
      if (rank !== root) buf.set(ROOT_ID);
    },
    abort: () => { throw new Error('abort'); },
    finish() {},
  };
}

/** A fake backend; `collectives` absent (like js/cpu) or present with `why` as its availability. */
function fakeBackend(calls: string[], why: string | null, grads: Map<Tensor, Float32Array>): Backend {
  const collectives: DeviceCollectives = {
    available: () => why ?? '',
    uniqueId: () => (calls.push('uniqueId'), ROOT_ID.slice()),
    init: (id, size, rank) => void calls.push(`init(${id.every((b) => b === 42) ? 'rootId' : 'other'}, ${size}, ${rank})`),
    allReduceSum: (t) => void calls.push(`device allReduceSum(${t.size})`),
  };
  const be = {
    name: why === null ? 'js' : 'cuda',
    async download(t: Tensor) { calls.push('download'); return grads.get(t)!.slice(); },
    upload(t: Tensor, data: Float32Array) { calls.push('upload'); grads.get(t)!.set(data); },
    ...(why === null ? {} : { collectives }),
  };
  return be as unknown as Backend;
}

const tensor = (size: number): Tensor => ({ size, shape: [size], dtype: 'f32' }) as unknown as Tensor;

test('a world of one: no collective at all, the loss returned as is', async () => {
  const calls: string[] = [];
  const be = fakeBackend(calls, '', new Map());
  assert.equal(gradientPath(be, SINGLE_PROCESS).kind, 'single');
  assert.equal(await allReduceGradients(be, [tensor(3)], 2.5, SINGLE_PROCESS), 2.5);
  assert.deepEqual(calls, []);
});

test('a backend without collectives (js, cpu) in 2 ranks: packed float32 over MPI, then the loss', async () => {
  const calls: string[] = [];
  const a = tensor(2), b = tensor(3);
  const grads = new Map([[a, new Float32Array([1, 2])], [b, new Float32Array([3, 4, 5])]]);
  const be = fakeBackend(calls, null, grads);
  const world = fakeWorld(0, 0, calls);
  assert.equal(gradientPath(be, world).kind, 'host');
  assert.equal(await allReduceGradients(be, [a, b], 2.5, world), 12.5);
  assert.deepEqual(calls, ['download', 'download', 'allReduceSum(Float32Array[5])', 'upload', 'upload', 'allReduceSum(Float64Array[1])']);
  assert.deepEqual([...grads.get(a)!, ...grads.get(b)!], [2, 3, 4, 5, 6]);
});

test('cuda with NCCL on every rank: rank 0 makes the id, it is broadcast, every rank inits once, grads stay on the device', async () => {
  for (const rank of [0, 1]) {
    const calls: string[] = [];
    const be = fakeBackend(calls, '', new Map());
    const world = fakeWorld(rank, 0, calls);
    assert.equal(gradientPath(be, world).kind, 'device');
    assert.deepEqual(calls, [
      'allReduceSum(Float64Array[1])', // the availability vote
      ...(rank === 0 ? ['uniqueId'] : []),
      'broadcast(128, 0)',
      `init(rootId, 2, ${rank})`,
    ]);
    calls.length = 0;
    assert.equal(await allReduceGradients(be, [tensor(2), tensor(3)], 2.5, world), 12.5);
    assert.equal(await allReduceGradients(be, [tensor(2)], 1, world), 11);
    assert.deepEqual(calls, [
      'device allReduceSum(2)', 'device allReduceSum(3)', 'allReduceSum(Float64Array[1])',
      'device allReduceSum(2)', 'allReduceSum(Float64Array[1])',
    ]);
  }
});

test('libnccl missing on some rank: every rank takes the host path, rank 0 says so in one line', () => {
  for (const [rank, why, otherMissing, line] of [
    [0, '', 1, 'alpaca-lora: NCCL is unavailable on 1 of 2 ranks; gradients are all-reduced through host memory over MPI'],
    [0, 'cannot load libnccl.so.2', 0, 'alpaca-lora: NCCL is unavailable on 1 of 2 ranks (rank 0: cannot load libnccl.so.2); gradients are all-reduced through host memory over MPI'],
    [1, 'cannot load libnccl.so.2', 0, null],
  ] as const) {
    const calls: string[] = [];
    const logged: string[] = [];
    const be = fakeBackend(calls, why, new Map());
    assert.equal(gradientPath(be, fakeWorld(rank, otherMissing, calls), (l) => logged.push(l)).kind, 'host');
    assert.deepEqual(calls, ['allReduceSum(Float64Array[1])']);
    assert.deepEqual(logged, line === null ? [] : [line]);
  }
});
