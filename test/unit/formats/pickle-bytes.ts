// Building pickle programs and torch.save archives by hand, for tests of the safe readers: every opcode
// is written out, so a test can say exactly what a file contains (malicious ones included).

import { writeChunksAtomic } from '../../../src/util/atomic-write.ts';
import { zipStored } from '../../../src/formats/zip-write.ts';

/** Concatenates opcodes (numbers), latin1 text, and byte arrays. */
export function pk(...parts: (number | string | Uint8Array)[]): Uint8Array {
  return Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.of(p) : typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
}

/** BINUNICODE */
export function str(s: string): Uint8Array {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(b.length);
  return pk(0x58, len, b);
}

/** BININT (signed 32-bit) */
export function int(v: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return pk(0x4a, b);
}

export function tuple(values: number[]): Uint8Array {
  return pk(0x28, ...values.map(int), 0x74);
}

export interface RawTensor {
  storage: string; // e.g. FloatStorage
  key: string;
  numel: number;
  offset: number;
  shape: number[];
  stride: number[];
}

/** torch.save's pickle for {name: tensor} with the given storages, offsets and strides. */
export function stateDictPickle(tensors: [string, RawTensor][]): Uint8Array {
  const items = tensors.map(([name, t]) =>
    pk(
      str(name),
      'ctorch._utils\n_rebuild_tensor_v2\n',
      0x28,
      pk(0x28, str('storage'), `ctorch\n${t.storage}\n`, str(t.key), str('cpu'), int(t.numel), 0x74, 0x51),
      int(t.offset), tuple(t.shape), tuple(t.stride), 0x89,
      'ccollections\nOrderedDict\n', 0x29, 0x52,
      0x74, 0x52,
    ),
  );
  return pk(0x80, 2, 0x7d, 0x28, ...items, 0x75, 0x2e);
}

/** A torch.save-style zip: `<top>/data.pkl` plus the given records. */
export async function writeTorchZip(path: string, pickle: Uint8Array, records: Record<string, Uint8Array>, top = 'archive'): Promise<void> {
  const entries = [['data.pkl', pickle] as const, ...Object.entries(records)].map(([name, data]) => ({ name: `${top}/${name}`, data: () => data }));
  await writeChunksAtomic(path, zipStored(entries));
}
