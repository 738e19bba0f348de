// Locating ../shared (fixtures, data, tokenizers) from tests. A test that needs it skips with a reason
// when the folder is missing, and fails instead when CI=true.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED = process.env.ALPACA_SHARED_DIR ?? resolve(projectRoot, '..', 'shared');
export const PROJECT_ROOT = projectRoot;

/** Path inside ../shared, e.g. sharedPath('fixtures', 'models', 'llama-mha'). */
export function sharedPath(...parts: string[]): string {
  return join(SHARED, ...parts);
}

/**
 * True when the path exists. Otherwise: under CI=true throws (the test fails); else marks the test
 * skipped with the reason and returns false.
 */
export function needShared(t: TestContext, ...parts: string[]): boolean {
  const p = sharedPath(...parts);
  if (existsSync(p)) return true;
  const reason = `${p} is missing: this test needs ../shared beside the project (set ALPACA_SHARED_DIR to point elsewhere)`;
  if (process.env.CI === 'true') throw new Error(reason);
  console.log(`# skip: ${reason}`);
  t.skip(reason);
  return false;
}
