// Writing a state dict as torch.save does (the zip format of PyTorch >= 1.6): a protocol-2 pickle of an
// OrderedDict of _rebuild_tensor_v2 over typed storages, one stored, 64-byte aligned record per tensor,
// written atomically and tensor by tensor. Readable by torch.load(weights_only=True). Also sharded
// pytorch_model-0000k-of-0000n.bin checkpoints with their index (shards.ts). Not a reader.

import { writeChunksAtomic } from '../util/atomic-write.ts';
import type { StorageDType } from './host-tensor.ts';
import { listEntries, outputBytes } from './output-tensor.ts';
import type { OutputEntries, OutputTensor } from './output-tensor.ts';
import { shardName, writeSharded } from './shards.ts';
import { zipStored } from './zip-write.ts';
import type { ZipInput } from './zip-write.ts';

const STORAGE_CLASS: Readonly<Record<StorageDType, string>> = {
  F32: 'FloatStorage', F16: 'HalfStorage', BF16: 'BFloat16Storage', I64: 'LongStorage',
  I32: 'IntStorage', I8: 'CharStorage', U8: 'ByteStorage', BOOL: 'BoolStorage',
};

const TOP = 'archive';

/** Writes `entries` (in their order) as a torch.save file at `path`. */
export async function writeTorchStateDict(path: string, entries: OutputEntries): Promise<void> {
  const list = listEntries(entries);
  const text = (s: string) => () => Buffer.from(s, 'latin1');
  const inputs: ZipInput[] = [
    { name: `${TOP}/data.pkl`, data: () => stateDictPickle(list) },
    { name: `${TOP}/.format_version`, data: text('1') },
    { name: `${TOP}/.storage_alignment`, data: text('64') },
    { name: `${TOP}/byteorder`, data: text('little') },
    ...list.map(([name, t], i) => ({ name: `${TOP}/data/${i}`, data: () => outputBytes(name, t) })),
    { name: `${TOP}/version`, data: text('3\n') },
  ];
  await writeChunksAtomic(path, zipStored(inputs));
}

/** Writes `pytorch_model.bin`, or shards of at most `maxShardBytes` plus pytorch_model.bin.index.json; returns the names. */
export function writeShardedTorch(dir: string, entries: OutputEntries, maxShardBytes: number): Promise<string[]> {
  return writeSharded(dir, entries, maxShardBytes, {
    single: 'pytorch_model.bin',
    index: 'pytorch_model.bin.index.json',
    shard: (i, n) => shardName('pytorch_model', '.bin', i, n),
    write: writeTorchStateDict,
  });
}

/** The pickle torch.save writes for an OrderedDict of contiguous tensors, storage i holding tensor i. */
function stateDictPickle(list: [string, OutputTensor][]): Uint8Array {
  const p = new PickleWriter();
  p.op(0x80, 2); // PROTO 2
  p.global('collections', 'OrderedDict');
  p.op(0x29, 0x52); // EMPTY_TUPLE, REDUCE
  p.put();
  for (let start = 0; start < list.length; start += 1000) { // pickle batches SETITEMS by 1000
    p.op(0x28); // MARK
    list.slice(start, start + 1000).forEach(([name, t], j) => {
      p.text(name);
      tensor(p, t, start + j);
    });
    p.op(0x75); // SETITEMS
  }
  p.op(0x2e); // STOP
  return p.bytes();
}

function tensor(p: PickleWriter, t: OutputTensor, key: number): void {
  p.global('torch._utils', '_rebuild_tensor_v2');
  p.op(0x28); // MARK: the arguments
  p.op(0x28); // MARK: the persistent id
  p.text('storage');
  p.global('torch', STORAGE_CLASS[t.dtype]);
  p.text(String(key));
  p.text('cpu');
  p.int(t.shape.reduce((a, b) => a * b, 1));
  p.op(0x74, 0x51); // TUPLE, BINPERSID
  p.int(0); // storage offset
  p.tuple(t.shape);
  p.tuple(contiguousStride(t.shape));
  p.op(0x89); // NEWFALSE: requires_grad
  p.global('collections', 'OrderedDict'); // backward hooks: OrderedDict()
  p.op(0x29, 0x52, 0x74, 0x52); // EMPTY_TUPLE, REDUCE, TUPLE, REDUCE
}

function contiguousStride(shape: number[]): number[] {
  const stride = new Array<number>(shape.length);
  for (let d = shape.length - 1, s = 1; d >= 0; s *= shape[d]!, d--) stride[d] = s;
  return stride;
}

/** Emits protocol-2 opcodes; globals and repeated strings are memoized as pickle does. */
class PickleWriter {
  private parts: number[] = [];
  private memo = new Map<string, number>();

  op(...codes: number[]): void {
    this.parts.push(...codes);
  }

  text(s: string): void {
    if (this.recall(`s:${s}`)) return;
    const b = Buffer.from(s, 'utf8');
    this.op(0x58); // BINUNICODE
    this.u32(b.length);
    this.parts.push(...b);
    this.remember(`s:${s}`);
  }

  global(module: string, name: string): void {
    if (this.recall(`g:${module}.${name}`)) return;
    this.op(0x63, ...Buffer.from(`${module}\n${name}\n`, 'latin1')); // GLOBAL
    this.remember(`g:${module}.${name}`);
  }

  int(v: number): void {
    if (v < 0x100) this.op(0x4b, v); // BININT1
    else if (v < 0x10000) this.op(0x4d, v & 0xff, v >>> 8); // BININT2
    else if (v < 0x80000000) { this.op(0x4a); this.u32(v); } // BININT
    else this.long(BigInt(v));
  }

  tuple(items: number[]): void {
    if (items.length === 0) return this.op(0x29); // EMPTY_TUPLE
    if (items.length > 3) this.op(0x28); // MARK
    items.forEach((v) => this.int(v));
    this.op(items.length > 3 ? 0x74 : 0x84 + items.length); // TUPLE or TUPLE1..3
  }

  /** Memoizes the value on top of the stack. */
  put(): void {
    this.remember(`#${this.memo.size}`);
  }

  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }

  /** LONG1: little-endian two's complement, with a sign byte to spare. */
  private long(v: bigint): void {
    const b: number[] = [];
    for (let x = v; x > 0n; x >>= 8n) b.push(Number(x & 0xffn));
    if (b.at(-1)! & 0x80) b.push(0);
    this.op(0x8a, b.length, ...b);
  }

  private remember(key: string): void {
    const i = this.memo.size;
    this.memo.set(key, i);
    if (i < 0x100) this.op(0x71, i); // BINPUT
    else { this.op(0x72); this.u32(i); } // LONG_BINPUT
  }

  private recall(key: string): boolean {
    const i = this.memo.get(key);
    if (i === undefined) return false;
    if (i < 0x100) this.op(0x68, i); // BINGET
    else { this.op(0x6a); this.u32(i); } // LONG_BINGET
    return true;
  }

  private u32(v: number): void {
    this.op(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
  }
}
