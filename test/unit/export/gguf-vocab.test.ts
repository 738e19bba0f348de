// The vocabulary embedded in GGUF: a SentencePiece tokenizer.model as llama.cpp's "llama" model (pieces,
// scores, types, special ids, flags), padding to the config's size, a ▁/byte-fallback tokenizer.json as
// "llama" with merge-rank scores, and a byte-level one as "gpt2" with its merges and pre-tokenizer name.

import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseLlamaConfig } from '../../../src/arch/llama-config.ts';
import { ggufVocabMetadata, TOKEN_TYPE } from '../../../src/export/gguf-vocab.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';
import { tempDir } from '../formats/tmp.ts';

const config = (vocab: number) => parseLlamaConfig({
  model_type: 'llama', hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, vocab_size: vocab, pad_token_id: 0,
}, 'config.json');

test('a SentencePiece tokenizer.model: pieces, scores, types, special ids and flags, padded to vocab_size', (t) => {
  if (!needShared(t, 'fixtures', 'tokenizers', 'llama2', 'tokenizer.model')) return;
  const dir = tempDir(t);
  copyFileSync(sharedPath('fixtures', 'tokenizers', 'llama2', 'tokenizer.model'), join(dir, 'tokenizer.model'));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ add_bos_token: true, add_eos_token: true, chat_template: '{{ x }}' }));
  const m = ggufVocabMetadata(dir, config(32002));
  const tokens = m.get('tokenizer.ggml.tokens')!.value as string[];
  const types = m.get('tokenizer.ggml.token_type')!.value as number[];
  const scores = m.get('tokenizer.ggml.scores')!.value as number[];
  assert.equal(m.get('tokenizer.ggml.model')!.value, 'llama');
  assert.equal(tokens.length, 32002);
  assert.deepEqual(tokens.slice(0, 4), ['<unk>', '<s>', '</s>', '<0x00>']);
  assert.deepEqual(types.slice(0, 4), [TOKEN_TYPE.unknown, TOKEN_TYPE.control, TOKEN_TYPE.control, TOKEN_TYPE.byte]);
  assert.equal(tokens[29871], '▁');
  assert.equal(types[29871], TOKEN_TYPE.normal);
  assert.ok(scores[300]! > scores[3000]!, 'earlier merges score higher');
  assert.deepEqual([tokens[32001], types[32001], scores[32001]], ['[PAD32001]', TOKEN_TYPE.unused, -1000]);
  assert.deepEqual(['bos', 'eos', 'unknown', 'padding'].map((k) => m.get(`tokenizer.ggml.${k}_token_id`)?.value), [1, 2, 0, 0]);
  assert.equal(m.get('tokenizer.ggml.add_bos_token')!.value, true);
  assert.equal(m.get('tokenizer.ggml.add_eos_token')!.value, true);
  assert.equal(m.get('tokenizer.chat_template')!.value, '{{ x }}');
  assert.throws(() => ggufVocabMetadata(dir, config(100)), /the tokenizer has 32000 tokens, more than config\.json's vocab_size 100/);
});

test('a ▁ / byte-fallback tokenizer.json becomes a "llama" vocabulary scored by merge rank', (t) => {
  if (!needShared(t, 'fixtures', 'tokenizers', 'llama2-hf5', 'tokenizer.json')) return;
  const m = ggufVocabMetadata(sharedPath('fixtures', 'tokenizers', 'llama2-hf5'), config(32000));
  const tokens = m.get('tokenizer.ggml.tokens')!.value as string[];
  const types = m.get('tokenizer.ggml.token_type')!.value as number[];
  const scores = m.get('tokenizer.ggml.scores')!.value as number[];
  assert.equal(m.get('tokenizer.ggml.model')!.value, 'llama');
  assert.equal(tokens[13], '<0x0A>');
  assert.equal(types[13], TOKEN_TYPE.byte);
  assert.deepEqual(types.slice(0, 3), [TOKEN_TYPE.unknown, TOKEN_TYPE.control, TOKEN_TYPE.control]);
  assert.deepEqual([scores[tokens.indexOf('▁▁')], scores[tokens.indexOf('▁t')]], [-1, -2], 'the first two merges');
  assert.equal(m.get('tokenizer.ggml.bos_token_id')!.value, 1);
});

test('a byte-level BPE tokenizer.json becomes "gpt2" with merges and the pre-tokenizer llama.cpp knows it by', (t) => {
  const dir = tempDir(t);
  const llama3Split = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const json = (split: string) => JSON.stringify({
    model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2, 'Ġ': 3 }, merges: [['a', 'b']] },
    added_tokens: [{ id: 4, content: '<|begin_of_text|>', special: true }, { id: 5, content: '<tool>', special: false }],
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: split } }, { type: 'ByteLevel' }] },
  });
  writeFileSync(join(dir, 'tokenizer.json'), json(llama3Split));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<|begin_of_text|>' }));
  const m = ggufVocabMetadata(dir, config(6));
  assert.equal(m.get('tokenizer.ggml.model')!.value, 'gpt2');
  assert.equal(m.get('tokenizer.ggml.pre')!.value, 'llama-bpe');
  assert.deepEqual(m.get('tokenizer.ggml.merges')!.value, ['a b']);
  assert.deepEqual(m.get('tokenizer.ggml.token_type')!.value, [1, 1, 1, 1, TOKEN_TYPE.control, TOKEN_TYPE.userDefined]);
  assert.equal(m.get('tokenizer.ggml.bos_token_id')!.value, 4);
  assert.equal(m.get('tokenizer.ggml.add_bos_token')!.value, false);
  writeFileSync(join(dir, 'tokenizer.json'), json('\\w+'));
  assert.throws(() => ggufVocabMetadata(dir, config(6)), /pre-tokenizer is none that llama\.cpp knows by name/);
});
