// New special tokens (--new_special_tokens) on the LLaMA-2 tokenizer, as tokenizer.json (run by
// @huggingface/tokenizers) and as tokenizer.model (our SentencePiece reader). Expectations follow HF's added-token
// rules, derived by hand: add_special_tokens gives each unknown token the next id (32000, 32001) and skips known
// ones; encoding first cuts the text at added tokens (longest match, whole, no normalization or stripping), each
// becomes its one id, and each text between is tokenized on its own as before (with its own dummy prefix ▁:
// HF's slow LlamaTokenizer with legacy, its default, and the fast one with Metaspace prepend_scheme "always").
// The ids of the pieces between are looked up in the LLaMA-2 vocabulary (▁user 1404, <0x0A> 13, hi 2918); with
// legacy=false the slow tokenizer gives the text after an added token no dummy prefix (user, not ▁user).

import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import { assignNewIds, splitOnAddedTokens, writeTokenizerFilesWith } from '../../../src/tokenizer/added-tokens.ts';
import { loadTokenizer, loadTokenizerWith } from '../../../src/tokenizer/load.ts';
import type { SentencePieceTokenizer } from '../../../src/tokenizer/sentencepiece-tokenizer.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';

const SP = ['fixtures', 'tokenizers', 'llama2'];
const HF = ['fixtures', 'tokenizers', 'llama2-hf5'];
const NEW = ['<|im_start|>', '<|im_end|>'];
const work = mkdtempSync(join(tmpdir(), 'added-tokens-'));
after(() => rmSync(work, { recursive: true, force: true }));
const ids = (t: { encode(s: string, o: { addBos: boolean }): number[] }, s: string) => t.encode(s, { addBos: false });

test('splitting at added tokens takes the longest token starting at each position', () => {
  const added = new Map([['<a>', 10], ['<a><b>', 11], ['<b>', 12]]);
  assert.deepEqual(splitOnAddedTokens('x<a><b>y<b><a>', added), ['x', 11, 'y', 12, 10]);
  assert.deepEqual(splitOnAddedTokens('<a', added), ['<a']);
  assert.deepEqual(splitOnAddedTokens('', added), []);
});

test('new ids follow the vocabulary; known and repeated tokens are not added again; an empty one is an error', () => {
  const known = (t: string) => (t === '</s>' ? 2 : null);
  assert.deepEqual(assignNewIds(['<x>', '</s>', '<y>', '<x>'], known, 100), [{ id: 100, content: '<x>', special: true }, { id: 101, content: '<y>', special: true }]);
  assert.throws(() => assignNewIds(['<x>', ''], known, 100), (e: Error) => e instanceof UserError && /--new_special_tokens: a token is empty/.test(e.message));
});

for (const [name, dir] of [['tokenizer.json', HF], ['tokenizer.model', SP]] as const) {
  test(`${name}: added special tokens are single ids and the text around them tokenizes as before`, (t) => {
    if (!needShared(t, ...dir)) return;
    const base = loadTokenizer(sharedPath(...dir));
    const { tokenizer, added } = loadTokenizerWith(sharedPath(...dir), [...NEW, '</s>']);
    assert.deepEqual(added.map((a) => [a.id, a.content]), [[32000, NEW[0]], [32001, NEW[1]]]);
    assert.equal(tokenizer.vocabSize, 32002);
    assert.deepEqual(ids(tokenizer, '<|im_start|>user\nhi<|im_end|>'), [32000, 1404, 13, 2918, 32001]);
    assert.deepEqual(ids(tokenizer, 'a <|im_end|> b'), [...ids(base, 'a '), 32001, ...ids(base, ' b')]);
    assert.deepEqual(ids(tokenizer, '<|im_start|><|im_end|>'), [32000, 32001]);
    for (const text of ['user\nhi', 'Hello, world! <im_start> is not a token', ' a  b ']) assert.deepEqual(ids(tokenizer, text), ids(base, text), text);
    assert.ok(tokenizer.isSpecial(32000) && tokenizer.isSpecial(32001));
    assert.equal(tokenizer.idToPiece(32001), '<|im_end|>');
    assert.equal(tokenizer.decode([32000, 1404, 32001], { skipSpecialTokens: true }), 'user');
    assert.match(tokenizer.decode([32000, 1404, 32001]), /^<\|im_start\|> ?user<\|im_end\|>$/);
  });

  test(`${name}: the written tokenizer files load with the same added tokens`, async (t) => {
    if (!needShared(t, ...dir)) return;
    const { tokenizer, added } = loadTokenizerWith(sharedPath(...dir), NEW);
    const out = join(work, name);
    mkdirSync(out, { recursive: true });
    const files = await writeTokenizerFilesWith(sharedPath(...dir), out, added);
    assert.ok(files.includes('tokenizer_config.json') && files.includes(name), files.join());
    const reloaded = loadTokenizer(out);
    assert.equal(reloaded.vocabSize, 32002);
    for (const text of ['<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n', 'a <|im_end|> b']) assert.deepEqual(ids(reloaded, text), ids(tokenizer, text));
    const config = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8'));
    if (name === 'tokenizer.model') {
      // a tokenizer.model folder keeps added tokens in added_tokens_decoder, as save_pretrained writes them
      assert.equal(config.tokenizer_class, 'LlamaTokenizer');
      assert.deepEqual(config.added_tokens_decoder['32000'], { content: NEW[0], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
      assert.deepEqual(config.additional_special_tokens, NEW);
    } else {
      assert.deepEqual(config.extra_special_tokens.slice(-2), NEW, 'transformers 5 lists them in extra_special_tokens');
    }
  });
}

test('tokenizer.model with legacy=false: the text after an added token gets no dummy prefix', (t) => {
  if (!needShared(t, ...SP)) return;
  const dir = join(work, 'non-legacy');
  mkdirSync(dir, { recursive: true });
  cpSync(sharedPath(...SP, 'tokenizer.model'), join(dir, 'tokenizer.model'));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ legacy: false }));
  const { tokenizer } = loadTokenizerWith(dir, NEW);
  const plainUser = (tokenizer as SentencePieceTokenizer).tokenToId('user')!;
  assert.notEqual(plainUser, 1404);
  assert.deepEqual(ids(tokenizer, 'user<|im_end|>user'), [1404, 32001, plainUser]);
});
