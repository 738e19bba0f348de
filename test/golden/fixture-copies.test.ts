// The goldens copied into test/fixtures (so some tests run without ../shared) must stay byte-identical to
// their source in ../shared; every file there must be listed here with its source, or be a folder of inputs
// made here by a script beside them.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { needShared, PROJECT_ROOT, sharedPath } from '../helpers/shared.ts';

const COPIES_DIR = join(PROJECT_ROOT, 'test', 'fixtures');

/** test/fixtures file -> its source, as a path inside ../shared. */
const SOURCES: Record<string, string[]> = {
  'alpaca_pipeline_golden.json': ['fixtures', 'alpaca_pipeline_golden.json'],
};

/** test/fixtures folders of inputs made here, not copies: folder -> the script that makes them. */
const MADE_HERE: Record<string, string> = { parquet: 'make-parquet.mjs' };

test('every file in test/fixtures names its ../shared source', () => {
  assert.deepEqual(readdirSync(COPIES_DIR).sort(), [...Object.keys(SOURCES), ...Object.keys(MADE_HERE)].sort());
  for (const [dir, script] of Object.entries(MADE_HERE)) assert.ok(readdirSync(join(COPIES_DIR, dir)).includes(script), `test/fixtures/${dir} has no ${script}`);
});

for (const [copy, source] of Object.entries(SOURCES)) {
  test(`test/fixtures/${copy} is byte-identical to ../shared/${source.join('/')}`, (t) => {
    if (!needShared(t, ...source)) return;
    assert.ok(readFileSync(join(COPIES_DIR, copy)).equals(readFileSync(sharedPath(...source))), `test/fixtures/${copy} differs from ${sharedPath(...source)}: copy it again`);
  });
}
