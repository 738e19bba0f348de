// The zip reader and writer behind torch.save files: alignment, zip64, deflate, damage; cross-checked with
// Python's zipfile when a python3 is present.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import { ZipReader } from '../../../src/formats/zip.ts';
import { zipStored } from '../../../src/formats/zip-write.ts';
import { writeChunksAtomic } from '../../../src/util/atomic-write.ts';
import { needPython, runPython } from './python.ts';
import { tempDir } from './tmp.ts';

const CONTENTS: [string, Uint8Array][] = [
  ['top/data.pkl', Buffer.from('pickle bytes')],
  ['top/data/0', Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff)],
  ['top/data/1', new Uint8Array(0)],
  ['top/ünïcode', Buffer.from('name in utf-8')],
];

async function writeZip(path: string, forceZip64 = false): Promise<void> {
  await writeChunksAtomic(path, zipStored(CONTENTS.map(([name, data]) => ({ name, data: () => data })), { forceZip64 }));
}

for (const forceZip64 of [false, true]) {
  test(`stored entries round-trip, their data 64-byte aligned${forceZip64 ? ', with zip64 records' : ''}`, async (t) => {
    const path = join(tempDir(t), 'a.zip');
    await writeZip(path, forceZip64);
    const zip = ZipReader.open(path);
    t.after(() => zip.close());
    assert.deepEqual(zip.names(), CONTENTS.map(([n]) => n));
    for (const [name, data] of CONTENTS) assert.deepEqual([...zip.read(name)], [...data], name);
    assert.deepEqual([...zip.readPart('top/data/0', 500, 3)], [...CONTENTS[1]![1].subarray(500, 503)]);
    assert.throws(() => zip.readPart('top/data/0', 999, 2), /outside entry "top\/data\/0" of 1000 bytes/);
    const file = readFileSync(path);
    assert.equal(file.indexOf(Buffer.from(CONTENTS[1]![1])) % 64, 0);
    assert.equal(file.indexOf('pickle bytes') % 64, 0);
    if (forceZip64) assert.ok(file.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), 'has a zip64 end record');
  });
}

test('Python\'s zipfile reads our archives, zip64 included, with valid CRCs', async (t) => {
  const python = needPython(t, 'zipfile');
  if (!python) return;
  const dir = tempDir(t);
  for (const forceZip64 of [false, true]) {
    const path = join(dir, `z${forceZip64}.zip`);
    await writeZip(path, forceZip64);
    const out = runPython(python, 'import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nprint(z.testzip(), [len(z.read(n)) for n in z.namelist()])', [path]);
    assert.equal(out.trim(), 'None [12, 1000, 0, 13]');
  }
});

test('deflated entries (from Python\'s zipfile) are inflated', async (t) => {
  const python = needPython(t, 'zipfile');
  if (!python) return;
  const path = join(tempDir(t), 'deflated.zip');
  runPython(python, 'import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z: z.writestr("a/b", "hello " * 100)', [path]);
  const zip = ZipReader.open(path);
  t.after(() => zip.close());
  assert.equal(zip.entry('a/b').method, 8);
  assert.equal(Buffer.from(zip.read('a/b')).toString(), 'hello '.repeat(100));
  assert.equal(Buffer.from(zip.readPart('a/b', 6, 5)).toString(), 'hello');
});

test('damaged archives are UserErrors naming the file', async (t) => {
  const dir = tempDir(t);
  const good = join(dir, 'good.zip');
  await writeZip(good);
  const bytes = readFileSync(good);
  const cases: [string, Uint8Array, RegExp][] = [
    ['tiny', Buffer.from('PK'), /it has only 2 bytes/],
    ['text', Buffer.alloc(100, 'x'), /no end-of-central-directory record/],
    ['truncated', bytes.subarray(200), /central directory .* lies past the end of the file/],
  ];
  for (const [name, content, message] of cases) {
    const path = join(dir, name);
    writeFileSync(path, content);
    assert.throws(() => ZipReader.open(path), (e: Error) => e instanceof UserError && e.message.includes(path) && message.test(e.message), name);
  }
  const zip = ZipReader.open(good);
  t.after(() => zip.close());
  assert.throws(() => zip.read('nope'), /has no entry "nope"/);
});
