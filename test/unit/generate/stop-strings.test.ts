// Stop strings over streamed text: held back while they might be starting, cut where they appear.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findStop, StopMatcher } from '../../../src/generate/stop-strings.ts';

test('text is released once it cannot begin a stop string, and cut before the stop string', () => {
  const m = new StopMatcher(['###', 'END']);
  assert.deepEqual(m.push('Hel'), { text: 'Hel', stopped: false });
  assert.deepEqual(m.push('lo #'), { text: 'lo ', stopped: false });
  assert.deepEqual(m.push('#'), { text: '', stopped: false });
  assert.deepEqual(m.push('x E'), { text: '##x ', stopped: false });
  assert.deepEqual(m.push('ND and more'), { text: '', stopped: true });
  assert.deepEqual(m.push('later'), { text: '', stopped: true });
  assert.equal(m.flush(), '');
});

test('a held prefix comes out at the end when the stop string never completes', () => {
  const m = new StopMatcher(['###']);
  assert.deepEqual(m.push('a ##'), { text: 'a ', stopped: false });
  assert.equal(m.flush(), '##');
  assert.deepEqual(new StopMatcher([]).push('any'), { text: 'any', stopped: false });
});

test('findStop finds the earliest of several', () => {
  assert.equal(findStop('ab END ###', ['###', 'END']), 3);
  assert.equal(findStop('abc', ['x']), -1);
});
