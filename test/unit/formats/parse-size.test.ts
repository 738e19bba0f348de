// --max_shard_size style sizes with Hugging Face's units.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import { parseSize } from '../../../src/util/parse-size.ts';

test('parseSize follows Hugging Face units: MB = 10^6, MiB = 2^20, Gb = gigabits', () => {
  assert.equal(parseSize('400MB'), 400e6);
  assert.equal(parseSize('2GB'), 2e9);
  assert.equal(parseSize('5GiB'), 5 * 2 ** 30);
  assert.equal(parseSize('10KiB'), 10240);
  assert.equal(parseSize('1.5GB'), 1.5e9);
  assert.equal(parseSize('8Gb'), 1e9);
  assert.equal(parseSize('5gb'), 5e9 / 8);
  assert.equal(parseSize('123'), 123);
  assert.equal(parseSize(4096), 4096);
  assert.equal(parseSize(' 3 mb '), 3e6 / 8);
});

test('parseSize refuses what is not a size, naming the flag', () => {
  for (const bad of ['', 'lots', '5XB', '-1GB', '0', 0, 1.5, -3]) {
    assert.throws(() => parseSize(bad, '--max_shard_size'), (e: Error) => e instanceof UserError && /--max_shard_size .* is not a size/.test(e.message), String(bad));
  }
});
