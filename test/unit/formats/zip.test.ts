// The zip reader and writer behind torch.save files: alignment, zip64, deflate, damage; cross-checked with
// Python's zipfile when a python3 is present.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { deflateRawSync } from 'node:zlib';
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

/** A one-entry zip of deflated `data` whose directory declares `size` bytes. */
function deflatedZip(name: string, data: Uint8Array, size: number): Buffer {
  const packed = deflateRawSync(data);
  const fileName = Buffer.from(name);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(packed.length, 18);
  local.writeUInt32LE(size, 22);
  local.writeUInt16LE(fileName.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(packed.length, 20);
  central.writeUInt32LE(size, 24);
  central.writeUInt16LE(fileName.length, 28);
  const cdOffset = local.length + fileName.length + packed.length;
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(1, 8);
  eocd.writeUInt16LE(1, 10);
  eocd.writeUInt32LE(central.length + fileName.length, 12);
  eocd.writeUInt32LE(cdOffset, 16);
  return Buffer.concat([local, fileName, packed, central, fileName, eocd]);
}

test('an entry that inflates past its declared size stops at that size (a zip bomb); a bad deflate stream is a UserError', (t) => {
  const dir = tempDir(t);
  const cases: [string, Buffer, RegExp][] = [
    ['bomb.zip', deflatedZip('a/data.pkl', new Uint8Array(64 << 20), 100), /entry "a\/data.pkl" inflates to more bytes, not the 100 its directory declares/],
    ['short.zip', deflatedZip('a/data.pkl', new Uint8Array(50), 100), /inflates to 50 bytes, not the 100/],
    ['garbage.zip', deflatedZip('a/data.pkl', new Uint8Array(50), 50).fill(0xff, 30 + 10, 30 + 12), /entry "a\/data.pkl" does not inflate/],
  ];
  for (const [name, bytes, message] of cases) {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    const zip = ZipReader.open(path);
    t.after(() => zip.close());
    assert.throws(() => zip.read('a/data.pkl'), (e: Error) => e instanceof UserError && e.message.includes(path) && message.test(e.message), name);
  }
  const ok = join(dir, 'ok.zip');
  writeFileSync(ok, deflatedZip('a/b', Buffer.from('hello '.repeat(50)), 300));
  const zip = ZipReader.open(ok);
  t.after(() => zip.close());
  assert.equal(Buffer.from(zip.read('a/b')).toString(), 'hello '.repeat(50));
});
