// Finding a Python that has a given module, for the cross-checks against Python's own readers (zipfile,
// torch). Tests that need one skip with the reason when there is none, and fail instead under CI=true
// (.ci/run installs Debian's python3-torch).

import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

const found = new Map<string, string | null>();

/** A python executable that can import `module`, or null. */
function pythonWith(module: string): string | null {
  if (!found.has(module)) {
    const candidates = ['/usr/bin/python3', 'python3', 'python'];
    const check = `import importlib.util, sys; sys.exit(importlib.util.find_spec(${JSON.stringify(module)}) is None)`;
    found.set(module, candidates.find((py) => spawnSync(py, ['-c', check], { stdio: 'ignore' }).status === 0) ?? null);
  }
  return found.get(module)!;
}

/** A python that can import `module`, or null after marking the test skipped (throws instead under CI=true). */
export function needPython(t: TestContext, module: string): string | null {
  const python = pythonWith(module);
  if (python) return python;
  const reason = `no python3 that imports ${module} to cross-check with (Debian: apt-get install python3${module === 'torch' ? '-torch' : ''})`;
  if (process.env.CI === 'true') throw new Error(reason);
  t.skip(reason);
  return null;
}

/** Runs a Python script with arguments; returns stdout, throws with stderr on failure. */
export function runPython(python: string, script: string, args: string[] = []): string {
  const r = spawnSync(python, ['-c', script, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return r.stdout;
}
