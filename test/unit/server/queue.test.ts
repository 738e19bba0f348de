// The server's generation queue: one job at a time in order, a full queue refused at once, a waiting job
// dropped when its client goes, and a job that fails (even before returning its promise) frees the queue.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CancelledError, GenerationQueue, QueueFullError } from '../../../src/server/queue.ts';

const later = <T>(value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), 5));

test('jobs run one at a time, in order', async () => {
  const q = new GenerationQueue(8);
  const log: string[] = [];
  const job = (name: string) => async () => {
    log.push(`start ${name}`);
    await later(null);
    log.push(`end ${name}`);
    return name;
  };
  const signal = new AbortController().signal;
  const results = await Promise.all(['a', 'b', 'c'].map((n) => q.submit(job(n), signal)));
  assert.deepEqual(results, ['a', 'b', 'c']);
  assert.deepEqual(log, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
});

test('a full queue refuses at once; a waiting job whose client leaves is dropped', async () => {
  const q = new GenerationQueue(1);
  const signal = new AbortController().signal;
  const first = q.submit(() => later('first'), signal);
  const leaving = new AbortController();
  const second = q.submit(() => later('second'), leaving.signal);
  assert.throws(() => q.submit(() => later('third'), signal), QueueFullError);
  leaving.abort();
  await assert.rejects(second, CancelledError);
  assert.equal(await first, 'first');
  assert.equal(await q.submit(() => later('fourth'), signal), 'fourth');
});

test('a job that throws, synchronously or not, does not block the jobs behind it', async () => {
  const q = new GenerationQueue(4);
  const signal = new AbortController().signal;
  const sync = q.submit(() => {
    throw new Error('sync');
  }, signal);
  const async_ = q.submit(async () => {
    throw new Error('async');
  }, signal);
  const after = q.submit(() => later('after'), signal);
  await assert.rejects(sync, /sync/);
  await assert.rejects(async_, /async/);
  assert.equal(await after, 'after');
});
