// The paged KV cache layout that Backend.attentionPaged reads (backend.ts): a row's time steps in blocks of
// blockTokens, block id b in chunk table b / blocksPerChunk from time step (b % blocksPerChunk) * blockTokens.
// Finding where a range of steps lives, for the cache's owner (model/kv-cache.ts) and for a backend that
// gathers (backends/paged-attention-by-parts.ts). Not the cache itself.

/** Time steps [t, t + len) of a row stored contiguously from row `row` of chunk `chunk`'s tables. */
export interface KvRun {
  chunk: number;
  row: number;
  t: number;
  len: number;
}

/** Where steps [t0, t0 + count) of a row with these block ids (in time order) live, as maximal contiguous runs. */
export function kvRuns(blocks: ArrayLike<number>, blockTokens: number, blocksPerChunk: number, t0: number, count: number): KvRun[] {
  const out: KvRun[] = [];
  for (let t = t0; t < t0 + count;) {
    const id = blocks[Math.floor(t / blockTokens)]!;
    const chunk = Math.floor(id / blocksPerChunk);
    const row = (id % blocksPerChunk) * blockTokens + (t % blockTokens);
    const len = Math.min(blockTokens - (t % blockTokens), t0 + count - t);
    const last = out[out.length - 1];
    if (last && last.chunk === chunk && last.row + last.len === row) last.len += len;
    else out.push({ chunk, row, t, len });
    t += len;
  }
  return out;
}
