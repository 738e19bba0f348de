// attentionPaged (backend.ts) composed from a backend's other ops, for a backend without a paged kernel (cuda):
// each row's new keys and values are copied into their blocks, the row's keys gathered into one contiguous
// scratch (a view when they already are contiguous), and attentionForward runs row by row. The js backend's
// direct loops (js/attention-paged.ts) are the reference this is tested against.

import type { Backend } from '../engine/backend.ts';
import { kvRuns } from '../engine/kv-runs.ts';
import type { Tensor } from '../engine/tensor.ts';

/** A scratch tensor `name` of at least n f32 elements, kept by the caller between calls. */
export type PagedScratch = (name: 'k' | 'v' | 'lse', n: number) => Tensor;

export function attentionPagedByParts(
  be: Backend, scratch: PagedScratch, out: Tensor, q: Tensor, k: Tensor, v: Tensor, kCache: readonly Tensor[], vCache: readonly Tensor[],
  rows: Int32Array, blocks: Int32Array, N: number, NH: number, NKV: number, HD: number, blockTokens: number, blocksPerChunk: number,
): void {
  const KD = NKV * HD, QD = NH * HD, P = blockTokens * blocksPerChunk, R = rows.length / 3;
  const maxBlocks = R > 0 ? blocks.length / R : 0;
  const cache = { k: kCache, v: vCache };
  const runs = (r: number, t0: number, count: number) => kvRuns(blocks.subarray(r * maxBlocks, (r + 1) * maxBlocks), blockTokens, blocksPerChunk, t0, count);
  for (let r = 0; r < R; r++) {
    const n0 = rows[3 * r]!, Tq = rows[3 * r + 1]!, Tk = rows[3 * r + 2]!;
    for (const run of runs(r, Tk - Tq, Tq)) {
      const from = n0 + run.t - (Tk - Tq);
      be.copyTime(kCache[run.chunk]!, k, 1, KD, P, run.row, N, from, run.len);
      be.copyTime(vCache[run.chunk]!, v, 1, KD, P, run.row, N, from, run.len);
    }
    const all = runs(r, 0, Tk);
    const keys = (kv: 'k' | 'v'): Tensor => {
      if (all.length === 1) return be.view(cache[kv][all[0]!.chunk]!, all[0]!.row * KD, [Tk, KD]);
      const gathered = be.view(scratch(kv, Tk * KD), 0, [Tk, KD]);
      for (const run of all) be.copyTime(gathered, cache[kv][run.chunk]!, 1, KD, Tk, run.t, P, run.row, run.len);
      return gathered;
    };
    be.attentionForward(
      be.view(out, n0 * QD, [Tq, QD]), be.view(scratch('lse', NH * Tq), 0, [NH * Tq]), be.view(q, n0 * QD, [Tq, QD]),
      keys('k'), keys('v'), null, 1, Tq, Tk, Tk, NH, NKV, HD,
    );
  }
}
