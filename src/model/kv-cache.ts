// The paged key/value cache of incremental decoding: per layer K (after rope) and V in blocks of
// KV_BLOCK_TOKENS time steps, handed to sequences on demand from a pool that grows a chunk of blocks at a time
// (up to its block budget) and gives its memory back when no sequence holds a block. A sequence is its block
// list and its length; rows of different lengths hold only the blocks they fill. Not the step that fills it (decode.ts).
//
// A chunk is a whole number of 2 MiB pages, as many blocks as fit (at least MIN_CHUNK_BLOCKS): the cpu backend maps
// such a buffer onto huge pages, and since the pool refills its chunks after every idle moment, small pages
// would each cost a page fault again (14 us a page on a 2-core cloud VM: 5 ms for a 1.5 MiB chunk).

import type { LlamaConfig } from '../arch/llama-config.ts';
import type { Backend } from '../engine/backend.ts';
import { BYTES_PER_ELEMENT } from '../engine/dtype.ts';
import { kvRuns, type KvRun } from '../engine/kv-runs.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { ActivationDType } from './activation-dtype.ts';

export const KV_BLOCK_TOKENS = 32;
const MIN_CHUNK_BLOCKS = 16;
const PAGE_BYTES = 2 ** 21;

/** One sequence's cache: block ids in time order, and the time steps filled. */
export interface KvSeq {
  blocks: number[];
  length: number;
}

interface Chunk {
  memory: Tensor; // whole pages, 2 * numLayers * chunkTokens * NKV * HD elements used
  k: Tensor[]; // per layer, views of memory: (chunkTokens, NKV * HD)
  v: Tensor[];
}

export function kvBlocksFor(tokens: number): number {
  return Math.ceil(tokens / KV_BLOCK_TOKENS);
}

export class KvPool {
  readonly chunks: Chunk[] = [];
  private free: number[] = []; // unused block ids, highest first (so the lowest is taken next)
  private used = 0;
  /** Blocks per chunk: block id b is in chunk b / chunkBlocks. */
  readonly chunkBlocks: number;
  private readonly chunkElements: number;
  private tables: { k: Tensor[][]; v: Tensor[][] } | null = null; // layer()'s lists, until the chunks change

  /** dtype: what keys and values are stored in (the model's activation dtype, as HF caches in the model's dtype). */
  constructor(
    private readonly be: Backend, private readonly config: LlamaConfig, readonly maxBlocks: number, readonly dtype: ActivationDType = 'f32',
  ) {
    const bytesPerBlock = 2 * config.numLayers * KV_BLOCK_TOKENS * config.numKvHeads * config.headDim * BYTES_PER_ELEMENT[dtype];
    const pages = Math.ceil((MIN_CHUNK_BLOCKS * bytesPerBlock) / PAGE_BYTES);
    this.chunkBlocks = Math.floor((pages * PAGE_BYTES) / bytesPerBlock);
    this.chunkElements = (pages * PAGE_BYTES) / BYTES_PER_ELEMENT[dtype];
  }

  /** Time steps per chunk tensor (its first dimension). */
  get chunkTokens(): number {
    return this.chunkBlocks * KV_BLOCK_TOKENS;
  }

  get blocksInUse(): number {
    return this.used;
  }

  /** Makes room for `tokens` more time steps in seq; throws when the block budget is spent. */
  grow(seq: KvSeq, tokens: number): void {
    const need = kvBlocksFor(seq.length + tokens) - seq.blocks.length;
    if (this.used + need > this.maxBlocks) throw new Error(`KV cache: ${need} more blocks needed, ${this.maxBlocks - this.used} left`);
    for (let i = 0; i < need; i++) {
      if (this.free.length === 0) this.addChunk();
      seq.blocks.push(this.free.pop()!);
    }
    this.used += need;
  }

  release(seq: KvSeq): void {
    this.free.push(...seq.blocks);
    this.free.sort((a, b) => b - a);
    this.used -= seq.blocks.length;
    seq.blocks = [];
    seq.length = 0;
    if (this.used === 0) this.freeChunks();
  }

  /** Layer l's key or value tables, one (chunkTokens, NKV*HD) tensor per chunk: block id b is in table b / chunkBlocks. */
  layer(kv: 'k' | 'v', l: number): Tensor[] {
    this.tables ??= { k: [], v: [] };
    return (this.tables[kv][l] ??= this.chunks.map((c) => c[kv][l]!));
  }

  /** Where steps [t0, t0 + count) of seq live, as maximal contiguous runs. */
  runs(seq: KvSeq, t0: number, count: number): KvRun[] {
    return kvRuns(seq.blocks, KV_BLOCK_TOKENS, this.chunkBlocks, t0, count);
  }

  /** dst (empty) becomes a copy of src, block by block, in every layer (beam search follows its beams). */
  copy(dst: KvSeq, src: KvSeq): void {
    if (dst.length !== 0) throw new Error('KvPool.copy: the destination must be empty');
    this.grow(dst, src.length);
    const W = this.config.numKvHeads * this.config.headDim, P = this.chunkTokens;
    for (const r of this.runs(src, 0, src.length)) {
      for (const d of this.runs(dst, r.t, r.len)) {
        const from = r.row + (d.t - r.t);
        for (let l = 0; l < this.config.numLayers; l++) {
          for (const kv of ['k', 'v'] as const) {
            this.be.copyTime(this.chunks[d.chunk]![kv][l]!, this.chunks[r.chunk]![kv][l]!, 1, W, P, d.row, P, from, d.len);
          }
        }
      }
    }
    dst.length = src.length;
  }

  /** Frees every chunk; the sequences' blocks are gone with them. */
  dispose(): void {
    this.freeChunks();
  }

  private addChunk(): void {
    const P = this.chunkTokens, W = this.config.numKvHeads * this.config.headDim, L = this.config.numLayers;
    const memory = this.be.alloc([this.chunkElements], this.dtype, 'scratch');
    const layers = (first: number) => Array.from({ length: L }, (_, l) => this.be.view(memory, (first + l) * P * W, [P, W]));
    const firstBlock = this.chunks.length * this.chunkBlocks;
    this.chunks.push({ memory, k: layers(0), v: layers(L) });
    this.tables = null;
    for (let i = this.chunkBlocks - 1; i >= 0; i--) this.free.push(firstBlock + i);
    this.free.sort((a, b) => b - a);
  }

  private freeChunks(): void {
    for (const c of this.chunks) this.be.free(c.memory);
    this.chunks.length = 0;
    this.tables = null;
    this.free = [];
    this.used = 0;
  }
}
