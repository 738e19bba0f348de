// The key/value cache of incremental decoding: per layer K and V (B, Tkv, NKV, HD) in float32, the
// key-padding mask (B, Tkv), each row's next position, and row reordering for beam search.
// Not the forward step that fills it (see decode.ts). Lives in the 'scratch' arena; free it with freeKvCache.

import type { LlamaConfig } from '../arch/llama-config.ts';
import type { Backend } from '../engine/backend.ts';
import type { Tensor } from '../engine/tensor.ts';

export interface KvCache {
  readonly B: number;
  readonly capacity: number; // Tkv: time steps allocated per row
  length: number; // Tk: time steps filled (the same for every row; left padding fills with masked steps)
  readonly k: Tensor[]; // per layer (B, Tkv, NKV, HD), after rope
  readonly v: Tensor[]; // per layer (B, Tkv, NKV, HD)
  readonly mask: Tensor; // (B, Tkv) i32, 1 = a real token
  readonly hostMask: Int32Array; // the mask as uploaded
  readonly nextPosition: Int32Array; // (B) real tokens so far = the position of the next one
  readonly spare: Tensor; // (B, Tkv, NKV, HD) room for one layer while rows are reordered
}

export function allocKvCache(be: Backend, config: LlamaConfig, B: number, capacity: number): KvCache {
  const shape = [B, capacity, config.numKvHeads, config.headDim];
  const layer = () => be.alloc(shape, 'f32', 'scratch');
  const k: Tensor[] = [], v: Tensor[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    k.push(layer());
    v.push(layer());
  }
  const mask = be.alloc([B, capacity], 'i32', 'scratch');
  const hostMask = new Int32Array(B * capacity);
  be.upload(mask, hostMask);
  return { B, capacity, length: 0, k, v, mask, hostMask, nextPosition: new Int32Array(B), spare: layer() };
}

export function freeKvCache(be: Backend, cache: KvCache): void {
  for (const t of [...cache.k, ...cache.v, cache.mask, cache.spare]) be.free(t);
}

/** Row b of the cache becomes a copy of row rows[b] (beam search follows its surviving beams). */
export function reorderKvCache(be: Backend, cache: KvCache, rows: readonly number[]): void {
  const { B, capacity: Tkv, length } = cache;
  if (rows.length !== B) throw new Error(`reorderKvCache: ${rows.length} rows for a cache of ${B}`);
  if (rows.every((r, b) => r === b)) return;
  const W = cache.k[0]!.size / (B * Tkv);
  const row = (t: Tensor, b: number) => be.view(t, b * Tkv * W, [1, Tkv, W]);
  for (const t of [...cache.k, ...cache.v]) {
    rows.forEach((src, b) => be.copyTime(row(cache.spare, b), row(t, src), 1, W, Tkv, 0, Tkv, 0, length));
    be.copyTime(t, cache.spare, B, W, Tkv, 0, Tkv, 0, length);
  }
  const mask = cache.hostMask.slice();
  const next = cache.nextPosition.slice();
  rows.forEach((src, b) => {
    cache.hostMask.set(mask.subarray(src * Tkv, (src + 1) * Tkv), b * Tkv);
    cache.nextPosition[b] = next[src]!;
  });
  be.upload(cache.mask, cache.hostMask);
}
