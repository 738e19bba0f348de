// A tensor handed to a file writer: either already in memory, or produced only when the writer reaches
// it, so that exporting a large model never holds more than one tensor's data at a time.

import { numel } from '../engine/tensor.ts';
import { ITEM_SIZE, bytesOf } from './host-tensor.ts';
import type { HostData, HostTensor, StorageDType } from './host-tensor.ts';

export interface PendingTensor {
  dtype: StorageDType;
  shape: number[];
  load(): HostData | Promise<HostData>;
}

export type OutputTensor = HostTensor | PendingTensor;

/** Named tensors in the order given (a Map works). */
export type OutputEntries = Iterable<readonly [string, OutputTensor]>;

export function byteSize(t: { dtype: StorageDType; shape: number[] }): number {
  return numel(t.shape) * ITEM_SIZE[t.dtype];
}

/** The tensor's bytes, loading them if pending; checks they fill its shape exactly. */
export async function outputBytes(name: string, t: OutputTensor): Promise<Uint8Array> {
  const data = 'data' in t ? t.data : await t.load();
  const bytes = bytesOf(data);
  if (bytes.byteLength !== byteSize(t)) {
    throw new Error(`tensor "${name}": ${bytes.byteLength} bytes of data for shape [${t.shape.join(', ')}] of ${t.dtype} (needs ${byteSize(t)})`);
  }
  return bytes;
}

/** The entries as a list, refusing a name given twice. */
export function listEntries(entries: OutputEntries): [string, OutputTensor][] {
  const list = [...entries].map(([name, t]) => [name, t] as [string, OutputTensor]);
  const seen = new Set<string>();
  for (const [name] of list) {
    if (seen.has(name)) throw new Error(`tensor "${name}" is given twice`);
    seen.add(name);
  }
  return list;
}
