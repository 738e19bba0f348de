// The per-tensor types of q4_k_m, q5_k_m and q6_k exports: llama-quantize's choice for a dense LLaMA.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useMoreBits } from '../../../src/export/gguf-mix.ts';
import { tensorType } from '../../../src/export/gguf-model.ts';

test('use_more_bits on 32 layers (LLaMA-7B): half of them, the first and last four and every third between', () => {
  const picked = Array.from({ length: 32 }, (_, l) => l).filter((l) => useMoreBits(l, 32));
  assert.deepEqual(picked, [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
});

test('q4_k_m and q5_k_m: Q6_K for attn_v and ffn_down in those layers and for the output, else Q4_K / Q5_K', () => {
  for (const [outtype, base] of [['q4_k_m', 'Q4_K'], ['q5_k_m', 'Q5_K']] as const) {
    const type = (name: string, shape = [4096, 4096], tied = false) => tensorType(shape, outtype, name, 32, tied);
    assert.equal(type('blk.0.attn_v.weight'), 'Q6_K');
    assert.equal(type('blk.4.attn_v.weight'), base);
    assert.equal(type('blk.6.ffn_down.weight', [4096, 11008]), 'Q6_K');
    assert.equal(type('blk.7.ffn_down.weight', [4096, 11008]), base);
    assert.equal(type('blk.0.attn_q.weight'), base);
    assert.equal(type('blk.0.ffn_up.weight', [11008, 4096]), base);
    assert.equal(type('blk.0.attn_norm.weight', [4096]), 'F32');
    assert.equal(type('output.weight', [32000, 4096]), 'Q6_K');
    assert.equal(type('token_embd.weight', [32000, 4096]), base, 'untied: the embedding takes the base type');
    assert.equal(type('token_embd.weight', [32000, 4096], true), 'Q6_K', 'tied: the embedding is the output');
    // Rows that are not whole 256-blocks: F16 here (llama.cpp: Q5_0 / Q5_1, which we do not write); 688 is not even 32-blocks.
    assert.equal(type('blk.7.ffn_down.weight', [256, 688]), 'F16');
  }
});

test('q6_k: Q6_K throughout, Q8_0 for rows of whole 32-blocks but not 256-blocks; q8_0 keeps Q8_0 for the output', () => {
  assert.equal(tensorType([4096, 4096], 'q6_k', 'blk.3.attn_v.weight', 32, false), 'Q6_K');
  assert.equal(tensorType([32000, 4096], 'q6_k', 'output.weight', 32, false), 'Q6_K');
  assert.equal(tensorType([4096, 4128], 'q6_k', 'blk.3.ffn_down.weight', 32, false), 'Q8_0');
  assert.equal(tensorType([32000, 4096], 'q8_0', 'output.weight', 32, false), 'Q8_0');
  assert.equal(tensorType([32000, 4096], 'q4_0', 'output.weight', 32, false), 'Q4_0', 'q4_0 stays pure');
});
