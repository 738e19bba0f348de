// Our SentencePiece reader against the sentencepiece library (../shared/fixtures/tokenizers/llama2):
// ids and pieces of 17 tricky strings, token for token; BOS as LlamaTokenizer adds it; decoding back.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { SentencePieceTokenizer } from '../../src/tokenizer/sentencepiece-tokenizer.ts';
import { needShared, sharedPath } from '../helpers/shared.ts';

interface TokenizerGolden {
  strings: string[];
  sentencepiece_encode_no_bos: number[][];
  sentencepiece_pieces: string[][];
  vocab_size: number;
}

const DIR = ['fixtures', 'tokenizers', 'llama2'];

function load(): { tokenizer: SentencePieceTokenizer; golden: TokenizerGolden } {
  return {
    tokenizer: SentencePieceTokenizer.fromFile(sharedPath(...DIR, 'tokenizer.model')),
    golden: JSON.parse(readFileSync(sharedPath(...DIR, 'golden.json'), 'utf8')),
  };
}

test('tokenizer.model encodes all 17 golden strings exactly as sentencepiece does', (t) => {
  if (!needShared(t, ...DIR, 'tokenizer.model')) return;
  const { tokenizer, golden } = load();
  assert.equal(tokenizer.vocabSize, golden.vocab_size);
  assert.equal(golden.strings.length, 17);
  golden.strings.forEach((text, i) => {
    const ids = tokenizer.encode(text, { addBos: false });
    assert.deepEqual(ids, golden.sentencepiece_encode_no_bos[i], `ids of ${JSON.stringify(text)}`);
    assert.deepEqual(ids.map((id) => tokenizer.idToPiece(id)), golden.sentencepiece_pieces[i], `pieces of ${JSON.stringify(text)}`);
  });
});

test('tokenizer.model prepends BOS by default and has LLaMA\'s special ids', (t) => {
  if (!needShared(t, ...DIR, 'tokenizer.model')) return;
  const { tokenizer, golden } = load();
  assert.deepEqual([tokenizer.bosId, tokenizer.eosId, tokenizer.unkId, tokenizer.padId], [1, 2, 0, null]);
  golden.strings.forEach((text, i) => assert.deepEqual(tokenizer.encode(text), [1, ...golden.sentencepiece_encode_no_bos[i]!]));
});

test('decoding gives every golden string back (sentencepiece round trip)', (t) => {
  if (!needShared(t, ...DIR, 'tokenizer.model')) return;
  const { tokenizer, golden } = load();
  for (const text of golden.strings) {
    assert.equal(tokenizer.decode(tokenizer.encode(text), { skipSpecialTokens: true }), text, JSON.stringify(text));
  }
  assert.equal(tokenizer.decode([1, 15043, 3186, 2]), '<s> Hello world</s>');
});

test('a 100k-character text encodes quickly and decodes back', (t) => {
  if (!needShared(t, ...DIR, 'tokenizer.model')) return;
  const { tokenizer, golden } = load();
  const text = golden.strings.join(' ').repeat(400); // ~100k characters
  const start = performance.now();
  const ids = tokenizer.encode(text, { addBos: false });
  const ms = performance.now() - start;
  assert.deepEqual(ids.slice(0, 2), golden.sentencepiece_encode_no_bos[0]);
  assert.equal(tokenizer.decode(ids), text);
  assert.ok(ms < 5000, `encoding 100k characters took ${ms.toFixed(0)} ms`);
});
