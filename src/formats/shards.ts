// Splitting a state dict into shard files as huggingface_hub does, and the `*.index.json` that maps each
// tensor to its shard, for any file format. Not a file format itself (see safetensors-write.ts, torch-write.ts).

import { join } from 'node:path';
import { numel } from '../engine/tensor.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { byteSize, listEntries } from './output-tensor.ts';
import type { OutputEntries, OutputTensor } from './output-tensor.ts';

export interface ShardLayout {
  /** The file name when everything fits in one, e.g. model.safetensors. */
  single: string;
  /** The index's file name, e.g. model.safetensors.index.json. */
  index: string;
  /** Shard i (1-based) of n, e.g. model-00001-of-00003.safetensors. */
  shard(i: number, n: number): string;
  write(path: string, entries: [string, OutputTensor][]): Promise<void>;
}

/** `<prefix>-0000i-of-0000n<ext>` */
export function shardName(prefix: string, ext: string, i: number, n: number): string {
  return `${prefix}-${String(i).padStart(5, '0')}-of-${String(n).padStart(5, '0')}${ext}`;
}

/** Writes the shards (and the index when there are several); returns the file names written. */
export async function writeSharded(dir: string, entries: OutputEntries, maxShardBytes: number, layout: ShardLayout): Promise<string[]> {
  const shards = splitIntoShards(listEntries(entries), maxShardBytes);
  const names = shards.length === 1 ? [layout.single] : shards.map((_, i) => layout.shard(i + 1, shards.length));
  for (let i = 0; i < shards.length; i++) await layout.write(join(dir, names[i]!), shards[i]!);
  if (shards.length > 1) {
    await writeFileAtomic(join(dir, layout.index), indexJson(shards, names));
    names.push(layout.index);
  }
  return names;
}

/** The huggingface_hub rule: fill shards in order; a tensor over the limit goes alone into its own shard. */
function splitIntoShards(list: [string, OutputTensor][], maxShardBytes: number): [string, OutputTensor][][] {
  if (!(maxShardBytes > 0)) throw new Error(`max shard size must be positive, got ${maxShardBytes}`);
  const shards: [string, OutputTensor][][] = [];
  let current: [string, OutputTensor][] = [];
  let currentBytes = 0;
  for (const entry of list) {
    const size = byteSize(entry[1]);
    if (size > maxShardBytes) {
      shards.push([entry]);
      continue;
    }
    if (currentBytes + size > maxShardBytes && current.length > 0) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(entry);
    currentBytes += size;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  return shards;
}

/** As transformers writes it: json.dumps(indent=2, sort_keys=True) plus a newline. */
function indexJson(shards: [string, OutputTensor][][], names: string[]): string {
  let totalSize = 0;
  let totalParameters = 0;
  const weightMap: [string, string][] = [];
  shards.forEach((shard, i) => {
    for (const [name, t] of shard) {
      totalSize += byteSize(t);
      totalParameters += numel(t.shape);
      weightMap.push([name, names[i]!]);
    }
  });
  weightMap.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const index = {
    metadata: { total_parameters: totalParameters, total_size: totalSize },
    weight_map: Object.fromEntries(weightMap),
  };
  return JSON.stringify(index, null, 2) + '\n';
}
