// safetensors reading and writing: every dtype, byte-identical rewrites of the fixtures (the reference
// library's layout), header validation, streaming from a 5 GB file, and transformers' sharded layout.

import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, readdirSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import type { HostTensor } from '../../../src/formats/host-tensor.ts';
import { SafetensorsFile, readSafetensors } from '../../../src/formats/safetensors.ts';
import { writeSafetensors, writeShardedSafetensors } from '../../../src/formats/safetensors-write.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';
import { tempDir } from './tmp.ts';

/** A file of the given header (object or raw text) followed by `dataBytes` zero bytes. */
function rawFile(path: string, header: unknown, dataBytes = 0, declaredLength?: bigint): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(declaredLength ?? BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
  return path;
}

function sameTensor(a: HostTensor, b: HostTensor, name: string): void {
  assert.equal(a.dtype, b.dtype, name);
  assert.deepEqual(a.shape, b.shape, name);
  assert.deepEqual(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength), Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength), name);
}

const ALL_DTYPES: [string, HostTensor][] = [
  ['f32', { dtype: 'F32', shape: [2, 3], data: Float32Array.of(1, -2, 3.5, 0, 1e-30, -7) }],
  ['f16', { dtype: 'F16', shape: [3], data: Uint16Array.of(0x3c00, 0xc000, 0x7bff) }],
  ['bf16', { dtype: 'BF16', shape: [1, 3], data: Uint16Array.of(0x3f80, 0xbf80, 0x4049) }],
  ['i64', { dtype: 'I64', shape: [2], data: BigInt64Array.of(-(2n ** 40n), 7n) }],
  ['i32', { dtype: 'I32', shape: [2, 1], data: Int32Array.of(-100, 2 ** 30) }],
  ['i8', { dtype: 'I8', shape: [3], data: Int8Array.of(-128, 0, 127) }],
  ['u8', { dtype: 'U8', shape: [1], data: Uint8Array.of(255) }],
  ['mask', { dtype: 'BOOL', shape: [2, 2], data: Uint8Array.of(1, 0, 0, 1) }],
  ['scalar', { dtype: 'F32', shape: [], data: Float32Array.of(42) }],
  ['empty', { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) }],
];

test('every dtype round-trips; the header is padded to 8 bytes and every tensor is aligned', async (t) => {
  const path = join(tempDir(t), 'all.safetensors');
  await writeSafetensors(path, ALL_DTYPES, { note: 'hi' });
  const file = SafetensorsFile.open(path);
  t.after(() => file.close());
  assert.deepEqual(file.metadata, { note: 'hi' });
  assert.deepEqual(new Set(file.names()), new Set(ALL_DTYPES.map(([n]) => n)));
  for (const [name, tensor] of ALL_DTYPES) sameTensor(file.read(name), tensor, name);
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  assert.equal((8 + headerLength) % 8, 0);
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString());
  assert.deepEqual(Object.keys(header).slice(0, 3), ['__metadata__', 'i64', 'empty'], 'metadata first, then by dtype (largest first), then name');
  for (const name of file.names()) {
    const { dtype, data_offsets: [begin] } = header[name];
    assert.equal(begin % { I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I8: 1, U8: 1, BOOL: 1 }[dtype as 'F32']!, 0, name);
  }
});

test('rewriting the fixture files reproduces them byte for byte (layout of the reference library)', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const dir = tempDir(t);
  for (const file of ['model.safetensors', 'adapter/adapter_model.safetensors']) {
    const original = sharedPath('fixtures', 'models', 'llama-mha', file);
    const copy = join(dir, 'copy.safetensors');
    await writeSafetensors(copy, readSafetensors(original), SafetensorsFile.open(original).metadata ?? undefined);
    assert.ok(readFileSync(copy).equals(readFileSync(original)), file);
  }
});

test('the fixture header is read without reading the data, and one tensor reads alone', (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const file = SafetensorsFile.open(sharedPath('fixtures', 'models', 'llama-mha', 'model.safetensors'));
  t.after(() => file.close());
  assert.deepEqual(file.metadata, { format: 'pt' });
  assert.equal(file.names().length, 21);
  assert.deepEqual(file.info('model.embed_tokens.weight'), { dtype: 'F32', shape: [512, 64] });
  const norm = file.read('model.norm.weight');
  assert.equal(norm.data.length, 64);
  assert.ok(norm.data.buffer.byteLength === 256, 'the tensor has a buffer of its own');
  assert.throws(() => file.read('nope'), /has no tensor named "nope"/);
});

test('a 5 GB file streams: only the header and the tensor asked for are read', async (t) => {
  const path = join(tempDir(t), 'sparse.safetensors');
  const far = 5_000_000_000;
  const header = { small: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, far: { dtype: 'I32', shape: [2], data_offsets: [far, far + 8] } };
  rawFile(path, header);
  const headerEnd = readFileSync(path).length;
  const fd = openSync(path, 'r+');
  ftruncateSync(fd, headerEnd + far + 8); // sparse: takes no disk
  writeSync(fd, Buffer.from(Int32Array.of(11, -12).buffer), 0, 8, headerEnd + far);
  closeSync(fd);
  const file = SafetensorsFile.open(path);
  t.after(() => file.close());
  assert.deepEqual([...file.read('far').data], [11, -12]);
  assert.deepEqual([...file.read('small').data], [0, 0]);
});

test('every malformed header is a UserError naming the file and the tensor', (t) => {
  const dir = tempDir(t);
  const ok = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  const cases: [string, () => string, RegExp][] = [
    ['short', () => (writeFileSync(join(dir, 'short'), Buffer.alloc(5)), join(dir, 'short')), /fewer than the 8-byte header length/],
    ['past-end', () => rawFile(join(dir, 'past-end'), { a: ok }, 8, 1n << 40n), /header length 1099511627776 runs past the end/],
    ['json', () => rawFile(join(dir, 'json'), '{"a": ', 0), /header is not JSON/],
    ['array', () => rawFile(join(dir, 'array'), '[1, 2]', 0), /header is not a JSON object/],
    ['dtype', () => rawFile(join(dir, 'dtype'), { weird: { ...ok, dtype: 'F64' } }, 8), /tensor "weird": unsupported dtype "F64"/],
    ['range', () => rawFile(join(dir, 'range'), { big: { ...ok, data_offsets: [0, 16] } }, 8), /tensor "big": data_offsets \[0, 16\] fall outside the 8 data bytes/],
    ['size', () => rawFile(join(dir, 'size'), { odd: { ...ok, shape: [3] } }, 8), /tensor "odd": .* hold 8 bytes but shape \[3\] of F32 needs 12/],
    ['overlap', () => rawFile(join(dir, 'overlap'), { a: ok, b: { ...ok, data_offsets: [4, 12] } }, 12), /tensors "a" and "b" overlap/],
    ['fraction', () => rawFile(join(dir, 'fraction'), { f: { ...ok, shape: [1.5] } }, 8), /tensor "f": shape \[1.5\] is not a list of non-negative integers/],
    ['negative', () => rawFile(join(dir, 'negative'), { n: { ...ok, data_offsets: [-8, 0] } }, 8), /tensor "n": data_offsets \[-8,0\] is not a pair/],
    ['metadata', () => rawFile(join(dir, 'metadata'), { __metadata__: { n: 1 } }, 0), /__metadata__ must map strings to strings/],
  ];
  for (const [name, make, message] of cases) {
    const path = make();
    assert.throws(() => SafetensorsFile.open(path), (e: Error) => e instanceof UserError && e.message.includes(path) && message.test(e.message), name);
  }
  assert.throws(() => SafetensorsFile.open(join(dir, 'missing')), /cannot open .*missing/);
});

test('sharded writing follows the huggingface_hub rule and writes transformers\' index', async (t) => {
  const dir = tempDir(t);
  const tensor = (n: number): HostTensor => ({ dtype: 'F32', shape: [n], data: Float32Array.from({ length: n }, (_, i) => i + n) });
  const entries: [string, HostTensor][] = [['a', tensor(10)], ['b', tensor(10)], ['huge', tensor(50)], ['c', tensor(20)], ['d', tensor(5)]];
  // 80 bytes = 20 floats per shard; `huge` is over the limit, so it is pushed at once as a shard of its own.
  const written = await writeShardedSafetensors(dir, entries, 80);
  assert.deepEqual(written, [
    'model-00001-of-00004.safetensors', 'model-00002-of-00004.safetensors', 'model-00003-of-00004.safetensors',
    'model-00004-of-00004.safetensors', 'model.safetensors.index.json',
  ]);
  const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
  assert.deepEqual(index, {
    metadata: { total_parameters: 95, total_size: 380 },
    weight_map: {
      huge: 'model-00001-of-00004.safetensors', a: 'model-00002-of-00004.safetensors', b: 'model-00002-of-00004.safetensors',
      c: 'model-00003-of-00004.safetensors', d: 'model-00004-of-00004.safetensors',
    },
  });
  assert.ok(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8').endsWith('}\n'));
  const shard = SafetensorsFile.open(join(dir, 'model-00002-of-00004.safetensors'));
  assert.deepEqual(shard.metadata, { format: 'pt' });
  assert.deepEqual([...shard.read('b').data], [...entries[1]![1].data]);
  shard.close();

  // Saving again in one shard replaces the old shards and index.
  assert.deepEqual(await writeShardedSafetensors(dir, entries, 10_000), ['model.safetensors']);
  assert.deepEqual(readdirSync(dir), ['model.safetensors']);
  assert.equal(readSafetensors(join(dir, 'model.safetensors')).size, 5);
});

test('the writer refuses data that does not fill its shape, and names given twice', async (t) => {
  const dir = tempDir(t);
  await assert.rejects(writeSafetensors(join(dir, 'x.safetensors'), [['w', { dtype: 'F32', shape: [3], data: new Float32Array(2) }]]), /tensor "w": 8 bytes of data for shape \[3\]/);
  await assert.rejects(writeSafetensors(join(dir, 'x.safetensors'), [['w', ALL_DTYPES[0]![1]], ['w', ALL_DTYPES[0]![1]]]), /"w" is given twice/);
  assert.deepEqual(readdirSync(dir), []);
});

test('a pending tensor is loaded only when the writer reaches it', async (t) => {
  const path = join(tempDir(t), 'lazy.safetensors');
  const loaded: string[] = [];
  const pending = (name: string, v: number) => ({ dtype: 'F32' as const, shape: [2], load: () => (loaded.push(name), Float32Array.of(v, v)) });
  await writeSafetensors(path, [['y', pending('y', 2)], ['x', pending('x', 1)]]);
  assert.deepEqual(loaded, ['x', 'y'], 'in file order, one at a time');
  assert.deepEqual([...readSafetensors(path).get('y')!.data], [2, 2]);
});
