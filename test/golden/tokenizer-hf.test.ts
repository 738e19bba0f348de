// tokenizer.json through @huggingface/tokenizers against transformers 5.17 (../shared/fixtures/tokenizers):
// hf_encode_with_bos and hf_decode_roundtrip on the 17 golden strings, and BOS/EOS control.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { HfTokenizer } from '../../src/tokenizer/hf-tokenizer.ts';
import { needShared, sharedPath } from '../helpers/shared.ts';

const HF_DIR = ['fixtures', 'tokenizers', 'llama2-hf5'];
const GOLDEN = ['fixtures', 'tokenizers', 'llama2', 'golden.json'];

interface HfGolden {
  strings: string[];
  hf_encode_with_bos: number[][];
  hf_decode_roundtrip: string[];
}

test('tokenizer.json reproduces transformers\' ids (with BOS) and decoding on all 17 strings', (t) => {
  if (!needShared(t, ...HF_DIR, 'tokenizer.json') || !needShared(t, ...GOLDEN)) return;
  const tokenizer = new HfTokenizer(sharedPath(...HF_DIR));
  const golden: HfGolden = JSON.parse(readFileSync(sharedPath(...GOLDEN), 'utf8'));
  golden.strings.forEach((text, i) => {
    const ids = tokenizer.encode(text);
    assert.deepEqual(ids, golden.hf_encode_with_bos[i], `ids of ${JSON.stringify(text)}`);
    assert.equal(tokenizer.decode(ids, { skipSpecialTokens: true }), golden.hf_decode_roundtrip[i], `decode of ${JSON.stringify(text)}`);
  });
});

test('tokenizer.json: special ids from tokenizer_config.json, BOS default from the post-processor', (t) => {
  if (!needShared(t, ...HF_DIR, 'tokenizer.json')) return;
  const tokenizer = new HfTokenizer(sharedPath(...HF_DIR));
  assert.deepEqual([tokenizer.bosId, tokenizer.eosId, tokenizer.unkId, tokenizer.padId], [1, 2, 0, null]);
  assert.equal(tokenizer.vocabSize, 32000);
  assert.equal(tokenizer.addBosToken, true);
  assert.equal(tokenizer.addEosToken, false);
  assert.deepEqual(tokenizer.encode('Hello world', { addBos: false, addEos: true }), [15043, 3186, 2]);
  assert.equal(tokenizer.idToPiece(13), '<0x0A>');
  assert.ok(tokenizer.isSpecial(2) && !tokenizer.isSpecial(13));
  assert.equal(tokenizer.decode([]), '');
});
