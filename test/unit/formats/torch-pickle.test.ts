// torch.save files: the fixtures' .bin files equal their safetensors, our writer round-trips, views are
// gathered, errors say why; cross-checked with real torch when a python3 with torch is present.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import type { HostTensor } from '../../../src/formats/host-tensor.ts';
import { readSafetensors } from '../../../src/formats/safetensors.ts';
import { TorchFile, readTorchFile } from '../../../src/formats/torch-pickle.ts';
import { writeTorchStateDict } from '../../../src/formats/torch-write.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';
import { pk, stateDictPickle, writeTorchZip } from './pickle-bytes.ts';
import type { RawTensor } from './pickle-bytes.ts';
import { needPython, runPython } from './python.ts';
import { tempDir } from './tmp.ts';

function bytes(h: HostTensor): Buffer {
  return Buffer.from(h.data.buffer, h.data.byteOffset, h.data.byteLength);
}

function assertSameTensors(actual: Map<string, HostTensor>, expected: Map<string, HostTensor>, what: string): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), what);
  for (const [name, e] of expected) {
    const a = actual.get(name)!;
    assert.equal(a.dtype, e.dtype, name);
    assert.deepEqual(a.shape, e.shape, name);
    assert.ok(bytes(a).equals(bytes(e)), `${what}: ${name} differs`);
  }
}

test('the fixture pytorch_model.bin holds exactly the weights of model.safetensors', (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha', 'pytorch_model.bin')) return;
  const dir = sharedPath('fixtures', 'models', 'llama-mha');
  assertSameTensors(readTorchFile(join(dir, 'pytorch_model.bin')), readSafetensors(join(dir, 'model.safetensors')), 'pytorch_model.bin');
  const file = TorchFile.open(join(dir, 'pytorch_model.bin'));
  t.after(() => file.close());
  assert.equal(file.names()[0], 'model.embed_tokens.weight', 'state dict order');
  assert.deepEqual(file.record('model.layers.0.mlp.down_proj.weight'), { dtype: 'F32', shape: [64, 160], stride: [160, 1], storageKey: '7', storageOffset: 0 });
});

test('the fixture adapters\' adapter_model.bin equal their adapter_model.safetensors', (t) => {
  for (const model of ['llama-mha', 'llama-gqa']) {
    if (!needShared(t, 'fixtures', 'models', model, 'adapter')) return;
    const dir = sharedPath('fixtures', 'models', model, 'adapter');
    assertSameTensors(readTorchFile(join(dir, 'adapter_model.bin')), readSafetensors(join(dir, 'adapter_model.safetensors')), model);
  }
});

const MIXED: [string, HostTensor][] = [
  ['f32', { dtype: 'F32', shape: [2, 3], data: Float32Array.of(1, -2, 3.5, 0, 1e-30, -7) }],
  ['f16', { dtype: 'F16', shape: [3], data: Uint16Array.of(0x3c00, 0xc000, 0x7bff) }],
  ['bf16', { dtype: 'BF16', shape: [1, 1, 3], data: Uint16Array.of(0x3f80, 0xbf80, 0x4049) }],
  ['i64', { dtype: 'I64', shape: [2], data: BigInt64Array.of(-(2n ** 40n), 7n) }],
  ['i32', { dtype: 'I32', shape: [2, 1], data: Int32Array.of(-100, 2 ** 30) }],
  ['i8', { dtype: 'I8', shape: [3], data: Int8Array.of(-128, 0, 127) }],
  ['u8', { dtype: 'U8', shape: [1], data: Uint8Array.of(255) }],
  ['mask', { dtype: 'BOOL', shape: [2, 2], data: Uint8Array.of(1, 0, 0, 1) }],
  ['scalar', { dtype: 'F32', shape: [], data: Float32Array.of(42) }],
  ['empty', { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) }],
  ['five-d', { dtype: 'F32', shape: [1, 2, 1, 2, 1], data: Float32Array.of(1, 2, 3, 4) }],
  ['wide', { dtype: 'U8', shape: [70000], data: new Uint8Array(70000).fill(3) }],
];

test('writeTorchStateDict round-trips every dtype and shape through our reader', async (t) => {
  const path = join(tempDir(t), 'out.bin');
  await writeTorchStateDict(path, MIXED);
  const back = readTorchFile(path);
  assert.deepEqual([...back.keys()], MIXED.map(([n]) => n), 'order kept');
  assertSameTensors(back, new Map(MIXED), 'round trip');
});

test('a state dict of over 1000 tensors is written in SETITEMS batches and read back', async (t) => {
  const path = join(tempDir(t), 'many.bin');
  const many = new Map(Array.from({ length: 1003 }, (_, i): [string, HostTensor] => [`t.${i}`, { dtype: 'I32', shape: [1], data: Int32Array.of(i) }]));
  await writeTorchStateDict(path, many);
  assertSameTensors(readTorchFile(path), many, 'many');
});

test('the fixture weights rewritten by writeTorchStateDict read back identical', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const weights = readSafetensors(sharedPath('fixtures', 'models', 'llama-mha', 'model.safetensors'));
  const path = join(tempDir(t), 'pytorch_model.bin');
  await writeTorchStateDict(path, weights);
  assertSameTensors(readTorchFile(path), weights, 'rewritten');
});

test('real torch reads our file with weights_only=True; what it saves (views included) reads as torch sees it', async (t) => {
  const python = needPython(t, 'torch');
  if (!python) return;
  const dir = tempDir(t);
  const [ours, theirs, views, contiguous] = ['ours', 'theirs', 'views', 'contiguous'].map((n) => join(dir, `${n}.bin`));
  await writeTorchStateDict(ours, MIXED);
  const out = runPython(python, `import sys, torch
sd = torch.load(sys.argv[1], weights_only=True)
print(type(sd).__name__, [str(v.dtype) for v in sd.values()], sd['f32'].tolist(), sd['i64'].tolist())
torch.save(sd, sys.argv[2])
base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
views = {'t': base.t(), 'rows': base[1:3], 'cols': base[:, 2:5], 'step': base[::2, ::3], 'same': base}
torch.save(views, sys.argv[3])
torch.save({k: v.contiguous() for k, v in views.items()}, sys.argv[4])`, [ours, theirs, views, contiguous]);
  assert.equal(out.trim(), "OrderedDict ['torch.float32', 'torch.float16', 'torch.bfloat16', 'torch.int64', 'torch.int32', 'torch.int8', 'torch.uint8', 'torch.bool', 'torch.float32', 'torch.float32', 'torch.float32', 'torch.uint8'] "
    + '[[1.0, -2.0, 3.5], [0.0, 1.0000000031710769e-30, -7.0]] [-1099511627776, 7]');
  assertSameTensors(readTorchFile(theirs), new Map(MIXED), 'saved by torch');
  const viewFile = TorchFile.open(views);
  t.after(() => viewFile.close());
  assert.deepEqual(viewFile.record('cols'), { dtype: 'F32', shape: [4, 3], stride: [6, 1], storageKey: '0', storageOffset: 2 });
  assertSameTensors(readTorchFile(views), readTorchFile(contiguous), 'views');
});

test('hand-built strided and offset views are gathered in row-major order', async (t) => {
  const path = join(tempDir(t), 'views.bin');
  const storage = Buffer.from(Float32Array.from({ length: 12 }, (_, i) => i).buffer);
  const view = (offset: number, shape: number[], stride: number[]): RawTensor => ({ storage: 'FloatStorage', key: '0', numel: 12, offset, shape, stride });
  await writeTorchZip(path, stateDictPickle([
    ['transposed', view(0, [4, 3], [1, 4])], // the (3, 4) storage, transposed
    ['offset', view(5, [2, 2], [2, 1])],
    ['column', view(1, [3, 1], [4, 1])],
  ]), { 'data/0': storage });
  const read = readTorchFile(path);
  assert.deepEqual([...read.get('transposed')!.data], [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
  assert.deepEqual([...read.get('offset')!.data], [5, 6, 7, 8]);
  assert.deepEqual([...read.get('column')!.data], [1, 5, 9]);
});

test('files that are not a readable state dict are UserErrors that say why', async (t) => {
  const dir = tempDir(t);
  const f32 = (numel: number) => ({ storage: 'FloatStorage', key: '0', numel, offset: 0, shape: [numel], stride: [1] });
  const cases: [string, () => Promise<void>, RegExp][] = [
    ['legacy', async () => writeFileSync(join(dir, 'legacy'), pk(0x80, 2, 0x8a, 10)), /legacy torch.save format of PyTorch < 1.6/],
    ['text', async () => writeFileSync(join(dir, 'text'), 'hello world'), /is not a torch.save file \(it is not a zip archive\)/],
    ['no-pickle', () => writeTorchZip(join(dir, 'no-pickle'), new Uint8Array(0), {}, 'a/b'), /expected one <folder>\/data.pkl, found 0/],
    ['big-endian', () => writeTorchZip(join(dir, 'big-endian'), stateDictPickle([]), { byteorder: Buffer.from('big') }), /saved on a big-endian machine/],
    ['short-storage', () => writeTorchZip(join(dir, 'short-storage'), stateDictPickle([['w', f32(4)]]), { 'data/0': new Uint8Array(12) }), /storage 0 has 12 bytes, but 4 F32 elements need 16/],
    ['past-storage', () => writeTorchZip(join(dir, 'past-storage'), stateDictPickle([['w', { ...f32(4), offset: 2, shape: [3] }]]), { 'data/0': new Uint8Array(16) }), /reaches past the end of storage 0/],
    ['missing-record', () => writeTorchZip(join(dir, 'missing-record'), stateDictPickle([['w', f32(4)]]), {}), /has no entry "archive\/data\/0"/],
    ['double', () => writeTorchZip(join(dir, 'double'), stateDictPickle([['w', { ...f32(1), storage: 'DoubleStorage' }]]), { 'data/0': new Uint8Array(8) }), /torch.DoubleStorage tensors, whose dtype is not supported/],
    ['not-a-tensor', () => writeTorchZip(join(dir, 'not-a-tensor'), pk(0x80, 2, 0x7d, 0x58, 4, 0, 0, 0, 'step', 0x4b, 3, 0x73, 0x2e), {}), /"step" is not a tensor: pass a file that holds a plain state dict/],
    ['not-a-dict', () => writeTorchZip(join(dir, 'not-a-dict'), pk(0x80, 2, 0x5d, 0x2e), {}), /holds no state dict/],
  ];
  for (const [name, make, message] of cases) {
    await make();
    const path = join(dir, name);
    assert.throws(() => TorchFile.open(path), (e: Error) => e instanceof UserError && e.message.includes(path) && message.test(e.message), name);
  }
});

test('an empty state dict (the 443-byte adapter_model.bin of alpaca-lora with new PEFT) opens with no tensors', async (t) => {
  const path = join(tempDir(t), 'adapter_model.bin');
  await writeTorchStateDict(path, []);
  assert.ok(readFileSync(path).length < 1000);
  assert.equal(readTorchFile(path).size, 0);
});
