// The layering between src/ folders, read from the import statements themselves: arch/ (config type and
// projection table) depends on neither model/ nor formats/, and nothing reachable from formats/ imports model/,
// so model/ → formats/ → model/ cycles (of values or types) cannot come back.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../helpers/shared.ts';

const SRC = join(PROJECT_ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []);
}

/** Each src/ file (relative to src/) → the src/ files it imports or re-exports from, `import type` included. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8');
    const targets = [...text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'(\.[^']+)'/gms)].map((m) => relative(SRC, resolve(dirname(file), m[1]!)));
    graph.set(relative(SRC, file), targets);
  }
  return graph;
}

function reachable(graph: Map<string, string[]>, start: string): Set<string> {
  const seen = new Set<string>();
  const stack = [start];
  while (stack.length) {
    for (const next of graph.get(stack.pop()!) ?? []) if (!seen.has(next)) { seen.add(next); stack.push(next); }
  }
  return seen;
}

const folder = (file: string): string => file.split('/')[0]!;

test('the import graph is read: model/ files import arch/ and formats/', () => {
  const graph = importGraph();
  const fromModel = [...graph].filter(([f]) => folder(f) === 'model').flatMap(([, targets]) => targets.map(folder));
  assert.ok(fromModel.includes('arch') && fromModel.includes('formats'), 'the parser found no model/ → arch/, formats/ imports');
});

test('arch/ imports only errors.ts and util/', () => {
  for (const [file, targets] of importGraph()) {
    if (folder(file) !== 'arch') continue;
    for (const t of targets) assert.ok(t === 'errors.ts' || ['arch', 'util'].includes(folder(t)), `${file} imports ${t}`);
  }
});

test('nothing reachable from formats/ or arch/ is in model/', () => {
  const graph = importGraph();
  for (const file of graph.keys()) {
    if (folder(file) !== 'formats' && folder(file) !== 'arch') continue;
    const intoModel = [...reachable(graph, file)].filter((f) => folder(f) === 'model');
    assert.deepEqual(intoModel, [], `${file} reaches model/`);
  }
});
