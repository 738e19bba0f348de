// The CLI's one-line messages for system errors and oversized allocations (no stack trace): describeError on
// real errors; `serve` on a busy port and `generate` asked for more tokens than the context, run as a user would.

import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { describeError } from '../../../src/cli/known-errors.ts';
import { runCli } from '../../helpers/cli.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';

const caught = (f: () => unknown): unknown => {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
};

test('file system errors name the path, say what happened and what to do', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'known-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.match(describeError(caught(() => openSync(dir, 'w')))!, new RegExp(`^${dir} is a folder where a file was expected \\(EISDIR, open\\): pass the file itself`));
  assert.match(describeError(caught(() => readFileSync(dir)))!, /^a path this command read or wrote is a folder where a file was expected \(EISDIR, read\)/);
  const efbig = Object.assign(new Error('EFBIG: file too large, write'), { code: 'EFBIG', syscall: 'write', path: join(dir, 'model.safetensors') });
  assert.match(describeError(efbig)!, /model\.safetensors would grow past the largest file this system allows .*\(EFBIG, write\): raise the limit/);
  const eacces = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES', syscall: 'open', path: '/ro/out' });
  assert.match(describeError(eacces)!, /^\/ro\/out cannot be accessed: permission denied \(EACCES, open\)/);
});

test('an allocation too large is "out of memory", and an unknown error is left to its stack', () => {
  assert.match(describeError(caught(() => new Float32Array(1e11)))!, /^out of memory: .*Invalid typed array length/);
  assert.equal(describeError(new TypeError('x is undefined')), null);
  assert.equal(describeError('a string'), null);
});

test('serve on a busy port exits with one line, no stack trace', async (t) => {
  if (!needShared(t, 'fixtures', 'trainer', 'base', 'tokenizer.model')) return;
  const busy = createServer();
  await new Promise<void>((done) => busy.listen(0, '127.0.0.1', done));
  t.after(() => busy.close());
  const port = (busy.address() as { port: number }).port;
  const r = runCli(['serve', '--base_model', sharedPath('fixtures', 'trainer', 'base'), '--backend', 'js', '--port', String(port)]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`error: port ${port} on 127\\.0\\.0\\.1 is already in use \\(EADDRINUSE\\): pass another --port`));
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('generate --max_new_tokens past the context is one line naming the bound, not a 128 GB allocation', (t) => {
  if (!needShared(t, 'fixtures', 'trainer', 'base', 'tokenizer.model')) return;
  const r = runCli(['generate', '--base_model', sharedPath('fixtures', 'trainer', 'base'), '--backend', 'js', '--prompt', 'Hi', '--max_new_tokens', '1000000000']);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^error: generate: --max_new_tokens 1000000000 is more than the model's whole context \(max_position_embeddings \d+\).*pass at most \d+\n$/m);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});
