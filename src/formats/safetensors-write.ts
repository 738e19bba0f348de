// Writing .safetensors files the way the reference library lays them out (tensors sorted by dtype then
// name, JSON header padded with spaces to 8 bytes), atomically and tensor by tensor; and sharded
// checkpoints with a model.safetensors.index.json as transformers writes them (shards.ts). Not a reader.

import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeChunksAtomic } from '../util/atomic-write.ts';
import type { StorageDType } from './host-tensor.ts';
import { byteSize, listEntries, outputBytes } from './output-tensor.ts';
import type { OutputEntries, OutputTensor } from './output-tensor.ts';
import { shardName, writeSharded } from './shards.ts';

// The reference library's dtype order (its enum order); larger items first keeps every tensor aligned.
const DTYPE_RANK: Readonly<Record<StorageDType, number>> = { BOOL: 0, U8: 1, I8: 2, F16: 3, BF16: 4, I32: 5, F32: 6, I64: 7 };

/** Writes one .safetensors file atomically. */
export async function writeSafetensors(path: string, entries: OutputEntries, metadata?: Record<string, string>): Promise<void> {
  const sorted = listEntries(entries).sort(
    ([an, a], [bn, b]) => DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || (an < bn ? -1 : an > bn ? 1 : 0),
  );
  await writeChunksAtomic(path, chunks(sorted, metadata));
}

async function* chunks(sorted: [string, OutputTensor][], metadata?: Record<string, string>): AsyncGenerator<Uint8Array> {
  yield headerBytes(sorted, metadata);
  for (const [name, t] of sorted) yield await outputBytes(name, t);
}

function headerBytes(sorted: [string, OutputTensor][], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = Object.create(null); // a tensor may be named __proto__
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of sorted) {
    const size = byteSize(t);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Buffer.alloc(8 + Math.ceil(json.length / 8) * 8, ' ');
  padded.writeBigUInt64LE(BigInt(padded.length - 8), 0);
  json.copy(padded, 8);
  return padded;
}

/**
 * Writes `<prefix>-00001-of-0000N.safetensors` shards of at most `maxShardBytes` (a larger tensor gets a shard
 * of its own) plus `<prefix>.safetensors.index.json`, or a single `<prefix>.safetensors` when all fits in one.
 * Stale shards and index of an earlier save under the same prefix are removed. Returns the file names written.
 */
export async function writeShardedSafetensors(
  dir: string,
  entries: OutputEntries,
  maxShardBytes: number,
  prefix = 'model',
  metadata: Record<string, string> = { format: 'pt' },
): Promise<string[]> {
  const names = await writeSharded(dir, entries, maxShardBytes, {
    single: `${prefix}.safetensors`,
    index: `${prefix}.safetensors.index.json`,
    shard: (i, n) => shardName(prefix, '.safetensors', i, n),
    write: (path, shard) => writeSafetensors(path, shard, metadata),
  });
  await removeStale(dir, prefix, new Set(names));
  return names;
}

async function removeStale(dir: string, prefix: string, keep: Set<string>): Promise<void> {
  const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const ours = new RegExp(`^${escaped}(-\\d{5}-of-\\d{5})?\\.safetensors(\\.index\\.json)?$`);
  for (const name of await readdir(dir)) {
    if (ours.test(name) && !keep.has(name)) await rm(join(dir, name), { force: true });
  }
}
