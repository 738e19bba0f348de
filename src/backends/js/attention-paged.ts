// The js backend's attentionPaged (backend.ts): a decode step's attention for all rows over the paged KV cache,
// the textbook way, one query at a time with its scores materialised. Not the training attention (attention.ts).

import type { Tensor } from '../../engine/tensor.ts';
import { store, target, values, writeF32 } from './memory.ts';

/** Where time step t of row r lives: its chunk and its row within the chunk's (steps, NKV*HD) table. */
function slot(blocks: Int32Array, r: number, maxBlocks: number, t: number, blockTokens: number, blocksPerChunk: number) {
  const id = blocks[r * maxBlocks + Math.floor(t / blockTokens)]!;
  return { chunk: Math.floor(id / blocksPerChunk), row: (id % blocksPerChunk) * blockTokens + (t % blockTokens) };
}

export function attentionPaged(
  out: Tensor, q: Tensor, k: Tensor, v: Tensor, kCache: readonly Tensor[], vCache: readonly Tensor[],
  rows: Int32Array, blocks: Int32Array, N: number, NH: number, NKV: number, HD: number, blockTokens: number, blocksPerChunk: number,
): void {
  const Q = values(q), Knew = values(k), Vnew = values(v), o = target(out);
  const Kc = kCache.map(values), Vc = vCache.map(values); // widened copies of 16-bit caches
  const KD = NKV * HD, R = rows.length / 3, maxBlocks = R > 0 ? blocks.length / R : 0;
  const at = (r: number, t: number) => slot(blocks, r, maxBlocks, t, blockTokens, blocksPerChunk);
  for (let r = 0; r < R; r++) {
    const n0 = rows[3 * r]!, Tq = rows[3 * r + 1]!, Tk = rows[3 * r + 2]!;
    for (let i = 0; i < Tq; i++) {
      const s = at(r, Tk - Tq + i);
      Kc[s.chunk]!.set(Knew.subarray((n0 + i) * KD, (n0 + i + 1) * KD), s.row * KD);
      Vc[s.chunk]!.set(Vnew.subarray((n0 + i) * KD, (n0 + i + 1) * KD), s.row * KD);
    }
  }
  // stored (rounded once when 16-bit), and read back as stored
  kCache.forEach((t, c) => (writeF32(t, Kc[c]!), (Kc[c] = values(t))));
  vCache.forEach((t, c) => (writeF32(t, Vc[c]!), (Vc[c] = values(t))));
  const scale = 1 / Math.sqrt(HD);
  for (let r = 0; r < R; r++) {
    const n0 = rows[3 * r]!, Tq = rows[3 * r + 1]!, Tk = rows[3 * r + 2]!;
    const p = new Float64Array(Tk);
    for (let h = 0; h < NH; h++) {
      const kh = Math.floor(h / (NH / NKV));
      for (let i = 0; i < Tq; i++) {
        const pos = Tk - Tq + i, qo = (n0 + i) * NH * HD + h * HD;
        let max = -Infinity;
        for (let j = 0; j <= pos; j++) {
          const s = at(r, j), K = Kc[s.chunk]!, ko = s.row * KD + kh * HD;
          let dot = 0;
          for (let d = 0; d < HD; d++) dot += Q[qo + d]! * K[ko + d]!;
          p[j] = dot * scale;
          if (p[j]! > max) max = p[j]!;
        }
        let sum = 0;
        for (let j = 0; j <= pos; j++) sum += (p[j] = Math.exp(p[j]! - max));
        o.fill(0, qo, qo + HD);
        for (let j = 0; j <= pos; j++) {
          const s = at(r, j), V = Vc[s.chunk]!, vo = s.row * KD + kh * HD;
          for (let d = 0; d < HD; d++) o[qo + d]! += (p[j]! / sum) * V[vo + d]!;
        }
      }
    }
  }
  store(out, o);
}
