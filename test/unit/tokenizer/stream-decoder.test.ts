// The streaming decoder: fed one id at a time it never emits half a character, and what it emits adds
// up to decode(all ids), leading-space rule included.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseSentencePieceModel } from '../../../src/tokenizer/sentencepiece-model.ts';
import { SentencePieceTokenizer } from '../../../src/tokenizer/sentencepiece-tokenizer.ts';
import { StreamDecoder } from '../../../src/tokenizer/stream-decoder.ts';
import type { Tokenizer } from '../../../src/tokenizer/tokenizer.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';
import { tinyModel } from './tiny-sentencepiece.ts';

function stream(tokenizer: Tokenizer, ids: number[]): string[] {
  const decoder = new StreamDecoder(tokenizer);
  const chunks = ids.map((id) => decoder.push(id));
  chunks.push(decoder.flush());
  return chunks;
}

const wholeCharacters = (s: string) => !s.includes('\uFFFD') && !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

test('holds byte pieces back until their character is complete', () => {
  const tokenizer = new SentencePieceTokenizer(parseSentencePieceModel(tinyModel([{ piece: '▁' }, { piece: 'a' }, { piece: '▁a', score: -1 }]), 't'), 't');
  const ids = tokenizer.encode('a 🦙a é'); // <s> ▁a ▁ F0 9F A6 99 a ▁ C3 A9
  const chunks = stream(tokenizer, ids);
  assert.deepEqual(chunks, ['', 'a', ' ', '', '', '', '🦙', 'a', ' ', '', 'é', '']);
  assert.equal(chunks.join(''), tokenizer.decode(ids, { skipSpecialTokens: true }));
});

test('a cut-off character is flushed as U+FFFD at the end', () => {
  const tokenizer = new SentencePieceTokenizer(parseSentencePieceModel(tinyModel([{ piece: 'a' }], { addDummyPrefix: false }), 't'), 't');
  const ids = tokenizer.encode('aé', { addBos: false }).slice(0, -1);
  assert.deepEqual(stream(tokenizer, ids), ['a', '', '\uFFFD']);
});

test('streams every golden string of the LLaMA tokenizer in whole characters, adding up to decode()', (t) => {
  if (!needShared(t, 'fixtures', 'tokenizers', 'llama2', 'tokenizer.model')) return;
  const tokenizer = SentencePieceTokenizer.fromFile(sharedPath('fixtures', 'tokenizers', 'llama2', 'tokenizer.model'));
  const golden: { strings: string[] } = JSON.parse(readFileSync(sharedPath('fixtures', 'tokenizers', 'llama2', 'golden.json'), 'utf8'));
  for (const text of golden.strings) {
    const ids = tokenizer.encode(text, { addEos: true });
    const chunks = stream(tokenizer, ids);
    assert.ok(chunks.every(wholeCharacters), `${JSON.stringify(text)} streamed as ${JSON.stringify(chunks)}`);
    assert.equal(chunks.join(''), text, JSON.stringify(text));
  }
});
