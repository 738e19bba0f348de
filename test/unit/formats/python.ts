// Finding a Python that has a given module, for the optional cross-checks against Python's own readers
// (zipfile, torch). Tests that need one skip when there is none.

import { spawnSync } from 'node:child_process';

const found = new Map<string, string | null>();

/** A python executable that can import `module`, or null. */
export function pythonWith(module: string): string | null {
  if (!found.has(module)) {
    const candidates = ['/usr/bin/python3', 'python3', 'python'];
    const check = `import importlib.util, sys; sys.exit(importlib.util.find_spec(${JSON.stringify(module)}) is None)`;
    found.set(module, candidates.find((py) => spawnSync(py, ['-c', check], { stdio: 'ignore' }).status === 0) ?? null);
  }
  return found.get(module)!;
}

/** Runs a Python script with arguments; returns stdout, throws with stderr on failure. */
export function runPython(python: string, script: string, args: string[] = []): string {
  const r = spawnSync(python, ['-c', script, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return r.stdout;
}
