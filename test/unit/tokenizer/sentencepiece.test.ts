// The SentencePiece reader and BPE on hand-made vocabularies: merge order by score, leftmost tie-break,
// byte fallback, unknowns, user-defined and unused pieces, normalization, decoding, and clear errors.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import { parseSentencePieceModel } from '../../../src/tokenizer/sentencepiece-model.ts';
import { SentencePieceTokenizer } from '../../../src/tokenizer/sentencepiece-tokenizer.ts';
import { tinyId, tinyModel, type TinyModelOptions, type TinyPiece } from './tiny-sentencepiece.ts';

const make = (pieces: TinyPiece[], options: TinyModelOptions = {}) =>
  new SentencePieceTokenizer(parseSentencePieceModel(tinyModel(pieces, options), 'tiny.model'), 'tiny.model');
const noPrefix = { addDummyPrefix: false };
const pieces = (t: SentencePieceTokenizer, text: string) => t.encode(text, { addBos: false }).map((id) => t.idToPiece(id));

describe('SentencePiece model reader', () => {
  test('reads pieces, scores, types and the spec fields', () => {
    const m = parseSentencePieceModel(tinyModel([{ piece: '▁a', score: -1.5 }], { removeExtraWhitespaces: true }), 'x');
    assert.equal(m.pieces.length, 3 + 256 + 1);
    assert.equal(m.pieces[tinyId(0)], '▁a');
    assert.equal(m.scores[tinyId(0)], -1.5);
    assert.equal(m.modelType, 'bpe');
    assert.equal(m.byteFallback, true);
    assert.deepEqual([m.unkId, m.bosId, m.eosId, m.padId], [0, 1, 2, -1]);
    assert.deepEqual(m.normalizer, { name: 'identity', hasCharsmap: false, addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true });
  });

  test('rejects what it cannot encode exactly, saying what to do', () => {
    assert.throws(() => make([{ piece: 'a' }], { modelType: 1 }), (e: Error) => e instanceof UserError && /unigram.*tokenizer\.json/.test(e.message));
    assert.throws(() => make([{ piece: 'a' }], { charsmap: new Uint8Array([1, 2, 3]) }), /normalization map/);
    assert.throws(() => parseSentencePieceModel(new TextEncoder().encode('{"not": "protobuf"}'), 'bad.model'), /bad\.model is not a SentencePiece model/);
  });
});

describe('SentencePiece BPE', () => {
  test('merges the highest-scoring pair first', () => {
    const abFirst = make([{ piece: 'a' }, { piece: 'b' }, { piece: 'c' }, { piece: 'ab', score: -1 }, { piece: 'bc', score: -2 }], noPrefix);
    assert.deepEqual(pieces(abFirst, 'abc'), ['ab', 'c']);
    const bcFirst = make([{ piece: 'a' }, { piece: 'b' }, { piece: 'c' }, { piece: 'ab', score: -2 }, { piece: 'bc', score: -1 }], noPrefix);
    assert.deepEqual(pieces(bcFirst, 'abc'), ['a', 'bc']);
    const chained = make([{ piece: 'a' }, { piece: 'b' }, { piece: 'c' }, { piece: 'ab', score: -1 }, { piece: 'abc', score: -3 }], noPrefix);
    assert.deepEqual(pieces(chained, 'abcab'), ['abc', 'ab']);
  });

  test('breaks score ties by the leftmost pair', () => {
    const t = make([{ piece: 'a' }, { piece: 'aa', score: -1 }], noPrefix);
    assert.deepEqual(pieces(t, 'aaa'), ['aa', 'a']);
    assert.deepEqual(pieces(t, 'aaaaa'), ['aa', 'aa', 'a']);
  });

  test('falls back to UTF-8 byte pieces for unknown characters, or to <unk> without byte fallback', () => {
    const t = make([{ piece: 'a' }], noPrefix);
    assert.deepEqual(pieces(t, 'aé🦙'), ['a', '<0xC3>', '<0xA9>', '<0xF0>', '<0x9F>', '<0xA6>', '<0x99>']);
    const noBytes = make([{ piece: 'a' }], { ...noPrefix, byteFallback: false });
    assert.deepEqual(noBytes.encode('aéa', { addBos: false }), [tinyId(0, false), 0, tinyId(0, false)]);
  });

  test('adds the dummy prefix, turns spaces into ▁ and keeps runs of spaces unless told to squeeze them', () => {
    const vocab = [{ piece: '▁' }, { piece: 'a' }, { piece: 'b' }, { piece: '▁a', score: -1 }, { piece: '▁▁', score: -9 }];
    assert.deepEqual(pieces(make(vocab), 'a  b'), ['▁a', '▁▁', 'b']);
    assert.deepEqual(pieces(make(vocab), 'a\tb'), ['▁a', '<0x09>', 'b']);
    assert.deepEqual(pieces(make(vocab), ''), []);
    assert.deepEqual(pieces(make(vocab, { removeExtraWhitespaces: true }), '  a   b  '), ['▁a', '▁', 'b']);
    assert.deepEqual(pieces(make(vocab, { removeExtraWhitespaces: true }), '   '), []);
  });

  test('segments across word boundaries when the vocabulary has a piece spanning one', () => {
    const t = make([{ piece: '▁' }, { piece: 'a' }, { piece: 'b' }, { piece: 'a▁', score: -1 }, { piece: 'a▁b', score: -2 }]);
    assert.deepEqual(pieces(t, 'a b'), ['▁', 'a▁b']);
  });

  test('never merges into a user-defined symbol, and matches the longest one', () => {
    const t = make([{ piece: 'a' }, { piece: 'b' }, { piece: '<x>', type: 4 }, { piece: '<xy>', type: 4 }, { piece: 'ab', score: -1 }], noPrefix);
    assert.deepEqual(pieces(t, 'ab<x>ab<xy>'), ['ab', '<x>', 'ab', '<xy>']);
  });

  test('splits unused pieces back into the pieces they were merged from', () => {
    const t = make([{ piece: 'a' }, { piece: 'b' }, { piece: 'c' }, { piece: 'ab', score: -1, type: 5 }, { piece: 'abc', score: -2 }], noPrefix);
    assert.deepEqual(pieces(t, 'ab'), ['a', 'b']);
    assert.deepEqual(pieces(t, 'abc'), ['abc']);
  });

  test('prepends BOS by default (LlamaTokenizer) and appends EOS on request', () => {
    const t = make([{ piece: '▁a' }]);
    assert.deepEqual(t.encode('a'), [1, tinyId(0)]);
    assert.deepEqual(t.encode('a', { addBos: false, addEos: true }), [tinyId(0), 2]);
    assert.equal(t.addBosToken, true);
    assert.equal(t.addEosToken, false);
    assert.equal(t.padId, null);
  });
});

describe('SentencePiece decoding', () => {
  const t = make([{ piece: '▁' }, { piece: 'a' }, { piece: '▁a', score: -1 }, { piece: '▁▁', score: -9 }]);

  test('joins byte pieces into UTF-8 and turns ▁ into spaces, dropping only the dummy-prefix space', () => {
    for (const text of ['a a', 'é a', '  a', ' a', 'a🦙a', '\n a']) {
      assert.equal(t.decode(t.encode(text, { addBos: false })), text, JSON.stringify(text));
      assert.equal(t.decode(t.encode(text), { skipSpecialTokens: true }), text, JSON.stringify(text));
    }
  });

  test('prints special tokens unless they are skipped', () => {
    const ids = t.encode('a a', { addEos: true });
    assert.equal(t.decode(ids), '<s> a a</s>');
    assert.equal(t.decode(ids, { skipSpecialTokens: true }), 'a a');
    assert.equal(t.decode([]), '');
  });

  test('a byte sequence cut short decodes to U+FFFD, and an id outside the vocabulary is an error', () => {
    const [, lead, trail] = t.encode('é', { addBos: false }); // ▁ <0xC3> <0xA9>
    assert.equal(t.decode([lead!]), '\uFFFD');
    assert.equal(t.decode([lead!, trail!]), 'é');
    assert.throws(() => t.decode([t.vocabSize]), (e: Error) => e instanceof UserError && /outside the vocabulary/.test(e.message));
  });
});
