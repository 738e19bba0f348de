// The queue in front of the running batch: a request that fits and finds nobody waiting starts at once, the rest
// wait in order (no overtaking by a smaller one), a full queue refuses at once, a waiting request whose signal
// aborts is dropped, and freeing room admits the next in line.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdmissionQueue, CancelledError, QueueFullError, type Need } from '../../../src/generate/admission.ts';

function queue(capacity: number, slots: number) {
  const held = { rows: 0 };
  const q = new AdmissionQueue(capacity, (n: Need) => held.rows + n.rows <= slots, (n: Need) => (held.rows += n.rows));
  return { q, held };
}

test('in order, without overtaking; freeing room admits the next', async () => {
  const { q, held } = queue(8, 4);
  const log: string[] = [];
  const enter = (name: string, rows: number) => q.enter({ rows, blocks: 0 }, undefined).then(() => log.push(name));
  const a = enter('a', 3), b = enter('b', 2), c = enter('c', 1);
  await a;
  assert.deepEqual([log, q.length, held.rows], [['a'], 2, 3], 'c (1 row) fits but does not overtake b');
  held.rows -= 3;
  q.admit();
  await Promise.all([b, c]);
  assert.deepEqual([log, held.rows], [['a', 'b', 'c'], 3]);
});

test('a full queue refuses at once; a waiting request whose client leaves is dropped', async () => {
  const { q, held } = queue(1, 1);
  await q.enter({ rows: 1, blocks: 0 }, undefined);
  const leaving = new AbortController();
  const waiting = q.enter({ rows: 1, blocks: 0 }, leaving.signal);
  assert.equal(q.positionOf(leaving.signal), 1);
  assert.throws(() => q.enter({ rows: 1, blocks: 0 }, undefined), QueueFullError);
  leaving.abort();
  await assert.rejects(waiting, CancelledError);
  assert.equal(q.length, 0);
  held.rows = 0;
  await q.enter({ rows: 1, blocks: 0 }, undefined);
  assert.equal(held.rows, 1);
});
