// `alpaca-lora tokenize` run as a user runs it (node bin/alpaca-lora.js) on the trainer fixture's
// tokenizer.model: ids per text, --no_bos, --pieces, --decode, and its errors.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { needShared, PROJECT_ROOT, sharedPath } from '../helpers/shared.ts';

const BASE = ['fixtures', 'trainer', 'base'];

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'alpaca-lora.js'), 'tokenize', ...args], { encoding: 'utf8', cwd: PROJECT_ROOT });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('prints one JSON array of ids per text, with BOS unless --no_bos, and pieces on request', (t) => {
  if (!needShared(t, ...BASE, 'tokenizer.model')) return;
  const base = sharedPath(...BASE);
  const r = cli('--base_model', base, 'Hello world', ' Hello', '你好');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n').map((line) => JSON.parse(line)), [[1, 15043, 3186], [1, 29871, 15043], [1, 29871, 30919, 31076]]);
  const noBos = cli('--base-model', base, '--no_bos', '--pieces', 'Hello  world');
  assert.equal(noBos.code, 0, noBos.stderr);
  assert.equal(noBos.stdout, '[15043,29871,3186]\n["▁Hello","▁","▁world"]\n');
});

test('--decode turns ids back into text, and a bad id is an error without a stack', (t) => {
  if (!needShared(t, ...BASE, 'tokenizer.model')) return;
  const base = sharedPath(...BASE);
  const r = cli('--base_model', base, '--decode', '1,15043,3186,13,243,162,169,156,2');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '<s> Hello world\n🦙</s>\n');
  const bad = cli('--base_model', base, '--decode', '1,99999');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error: token id 99999 is outside the vocabulary .*tokenizer\.model \(0\.\.31999\)\n$/);
});
