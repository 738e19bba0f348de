// The paged KV cache's bookkeeping on the js backend: sequences growing in turn get interleaved blocks whose
// runs are found and merged where adjacent, the block budget is enforced, a copy holds the same keys and
// values, and the pool's memory goes back once no sequence holds a block. Expectations are by hand from the
// block size (32 tokens) and the chunk size (whole 2 MiB pages, at least 16 blocks).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLlamaConfig } from '../../../src/arch/llama-config.ts';
import { JsBackend } from '../../../src/backends/js/index.ts';
import { KV_BLOCK_TOKENS, KvPool, kvBlocksFor, type KvSeq } from '../../../src/model/kv-cache.ts';

// a block: 2 layers x (K, V) x 32 steps x 256 floats x 4 bytes = 128 KiB, so a 2 MiB chunk holds 16 blocks
const config = parseLlamaConfig({
  model_type: 'llama', hidden_size: 512, intermediate_size: 16, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 10,
}, 'test');

test('a chunk is whole 2 MiB pages holding as many blocks as fit, at least 16', () => {
  const be = new JsBackend();
  const blocksPerChunk = (layers: number, kvHeads: number, dtype: 'f32' | 'bf16') => new KvPool(be, parseLlamaConfig({
    model_type: 'llama', hidden_size: 2048, intermediate_size: 16, num_hidden_layers: layers, num_attention_heads: 16, num_key_value_heads: kvHeads, vocab_size: 10,
  }, 'test'), 100, dtype).chunkBlocks;
  assert.equal(new KvPool(be, config, 20).chunkBlocks, 16);
  // head size 128; a block 2 x 6 x 32 x 128 x 2 bytes = 96 KiB: 21 fit in 2 MiB (2016 KiB)
  assert.equal(blocksPerChunk(6, 1, 'bf16'), 21);
  // 2 x 30 x 32 x 512 x 4 = 3.75 MiB a block: 16 blocks need 30 pages, which hold 16
  assert.equal(blocksPerChunk(30, 4, 'f32'), 16);
  // 2 x 20 x 32 x 512 x 4 = 2.5 MiB a block: 16 blocks need 20 pages, which hold exactly 16
  assert.equal(blocksPerChunk(20, 4, 'f32'), 16);
  // 2 x 3 x 32 x 256 x 4 = 192 KiB: 16 need 3 MiB, so 2 pages, which hold 21 (4032 KiB)
  assert.equal(blocksPerChunk(3, 2, 'f32'), 21);
});

test('blocks are handed out in turn, runs merge adjacent blocks, the budget holds, an empty pool frees its chunks', () => {
  assert.equal(KV_BLOCK_TOKENS, 32);
  assert.deepEqual([kvBlocksFor(1), kvBlocksFor(32), kvBlocksFor(33)], [1, 1, 2]);
  const be = new JsBackend();
  const pool = new KvPool(be, config, 20);
  const a: KvSeq = { blocks: [], length: 0 }, b: KvSeq = { blocks: [], length: 0 };
  pool.grow(a, 40); // blocks 0, 1
  pool.grow(b, 10); // block 2
  a.length = 40;
  pool.grow(a, 30); // 70 steps: block 3 joins
  assert.deepEqual([a.blocks, b.blocks, pool.blocksInUse], [[0, 1, 3], [2], 4]);
  assert.deepEqual(pool.runs(a, 0, 70), [{ chunk: 0, row: 0, t: 0, len: 64 }, { chunk: 0, row: 96, t: 64, len: 6 }]);
  assert.deepEqual(pool.runs(a, 50, 20), [{ chunk: 0, row: 50, t: 50, len: 14 }, { chunk: 0, row: 96, t: 64, len: 6 }]);
  const big: KvSeq = { blocks: [], length: 0 };
  pool.grow(big, 16 * KV_BLOCK_TOKENS); // 16 blocks: 12 from the first chunk, 4 from a second
  assert.equal(pool.chunks.length, 2);
  assert.deepEqual(pool.runs(big, 0, 16 * KV_BLOCK_TOKENS).map((r) => [r.chunk, r.len]), [[0, 12 * 32], [1, 4 * 32]]);
  assert.throws(() => pool.grow(b, 100), /KV cache: 3 more blocks needed, 0 left/);
  for (const s of [a, b, big]) pool.release(s);
  assert.deepEqual([pool.blocksInUse, pool.chunks.length, a.blocks, a.length], [0, 0, [], 0]);
});

test('a copy holds the same keys and values, layer by layer', async () => {
  const be = new JsBackend();
  const pool = new KvPool(be, config, 8);
  const src: KvSeq = { blocks: [], length: 0 }, spacer: KvSeq = { blocks: [], length: 0 };
  pool.grow(src, 32);
  src.length = 32;
  pool.grow(spacer, 1); // src's second block is not next to its first
  pool.grow(src, 13);
  src.length = 45;
  assert.deepEqual(src.blocks, [0, 2]);
  const W = config.numKvHeads * config.headDim, P = pool.chunkTokens;
  const values = (l: number, kv: 'k' | 'v') => Float32Array.from({ length: P * W }, (_, i) => l * 1000 + (kv === 'k' ? 0 : 500) + (i % 997));
  for (let l = 0; l < config.numLayers; l++) for (const kv of ['k', 'v'] as const) be.upload(pool.chunks[0]![kv][l]!, values(l, kv));
  const dst: KvSeq = { blocks: [], length: 0 };
  pool.copy(dst, src);
  assert.equal(dst.length, 45);
  const steps = async (seq: KvSeq, l: number, kv: 'k' | 'v') => {
    const all = (await be.download(pool.chunks[0]![kv][l]!)) as Float32Array;
    return pool.runs(seq, 0, seq.length).flatMap((r) => Array.from(all.subarray(r.row * W, (r.row + r.len) * W)));
  };
  for (let l = 0; l < config.numLayers; l++) for (const kv of ['k', 'v'] as const) assert.deepEqual(await steps(dst, l, kv), await steps(src, l, kv));
  assert.throws(() => pool.copy(dst, src), /must be empty/);
});
