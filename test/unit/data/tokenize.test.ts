// makePromptTokenizer on a one-id-per-character tokenizer, so every count can be checked by hand:
// truncation at cutoff_len, the EOS rule and its quirk, prompt masking, raw text and pre-tokenized rows.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import type { DataRecord } from '../../../src/data/dataset.ts';
import { Prompter } from '../../../src/data/prompter.ts';
import { encodeHead, IGNORE_INDEX, makePromptTokenizer, requireTrainedTokens, trainedTokenCount } from '../../../src/data/tokenize.ts';
import { loadTokenizer } from '../../../src/tokenizer/load.ts';
import type { Tokenizer } from '../../../src/tokenizer/tokenizer.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';
import { CharTokenizer } from './char-tokenizer.ts';

const tokenizer = new CharTokenizer();
const prompter = new Prompter({ source: 'test', description: '', prompt_input: '{instruction}|{input}>', prompt_no_input: '{instruction}>', response_split: '>' });
const record = (instruction: string, output: string, input = ''): DataRecord => ({ kind: 'instruction', instruction, input, output });
const ids = (text: string) => tokenizer.encode(text, { addBos: false });
const M = IGNORE_INDEX;

describe('alpaca-lora prompt tokenization', () => {
  test('the full prompt gets BOS and EOS; train_on_inputs trains on all of it', () => {
    const f = makePromptTokenizer(tokenizer, prompter, { cutoffLen: 100, trainOnInputs: true, addEosToken: false });
    const e = f(record('ab', 'xy'));
    assert.deepEqual(e.input_ids, [1, ...ids('ab>xy'), 2]);
    assert.deepEqual(e.labels, e.input_ids);
    assert.deepEqual(e.attention_mask, [1, 1, 1, 1, 1, 1, 1]);
    assert.deepEqual(f(record('ab', 'xy', 'in')).input_ids, [1, ...ids('ab|in>xy'), 2]);
  });

  test('train_on_inputs false masks the prompt; add_eos_token only changes how it is counted (the seed\'s quirk)', () => {
    const noEos = makePromptTokenizer(tokenizer, prompter, { cutoffLen: 100, trainOnInputs: false, addEosToken: false });
    assert.deepEqual(noEos(record('ab', 'xy')).labels, [M, M, M, M, ...ids('xy'), 2]);
    const withEos = makePromptTokenizer(tokenizer, prompter, { cutoffLen: 100, trainOnInputs: false, addEosToken: true });
    const e = withEos(record('ab', 'xy'));
    assert.deepEqual(e.input_ids, [1, ...ids('ab>xy'), 2], 'the full prompt is the same either way');
    assert.deepEqual(e.labels, [M, M, M, M, ...ids('xy'), 2]);
  });

  test('cutoff_len truncates, and a truncated example gets no EOS', () => {
    const f = makePromptTokenizer(tokenizer, prompter, { cutoffLen: 6, trainOnInputs: false, addEosToken: false });
    const cut = f(record('ab', 'wxyz'));
    assert.deepEqual(cut.input_ids, [1, ...ids('ab>wx')]);
    assert.deepEqual(cut.labels, [M, M, M, M, ...ids('wx')]);
    const fits = f(record('ab', 'w'));
    assert.deepEqual(fits.input_ids, [1, ...ids('ab>w'), 2], 'exactly cutoff_len with the EOS');
  });

  test('with add_eos_token, a prompt cut at cutoff_len is counted one short, as the seed counts it', () => {
    const f = makePromptTokenizer(tokenizer, prompter, { cutoffLen: 4, trainOnInputs: false, addEosToken: true });
    const e = f(record('abcdef', 'x'));
    assert.deepEqual(e.input_ids, [1, ...ids('abc')]);
    assert.deepEqual(e.labels, [M, M, M, ids('c')[0]]);
  });

  test('raw text trains on every token; pre-tokenized rows pass through, cut at cutoff_len', () => {
    const f = makePromptTokenizer(tokenizer, prompter, { cutoffLen: 5, trainOnInputs: false, addEosToken: false });
    assert.deepEqual(f({ kind: 'text', text: 'abc' }).labels, [1, ...ids('abc'), 2]);
    const row = f({ kind: 'tokenized', input_ids: [1, 10, 11, 12, 13, 14], labels: [M, M, 11, 12, 13, 14] });
    assert.deepEqual(row, { input_ids: [1, 10, 11, 12, 13], labels: [M, M, 11, 12, 13], attention_mask: [1, 1, 1, 1, 1] });
    assert.throws(() => f({ kind: 'tokenized', input_ids: [tokenizer.vocabSize], labels: [1] }), /outside the vocabulary/);
  });

  test('a cutoff_len below 2 is refused', () => {
    assert.throws(() => makePromptTokenizer(tokenizer, prompter, { cutoffLen: 1, trainOnInputs: true, addEosToken: false }), UserError);
  });
});

describe('requireTrainedTokens', () => {
  test('counts trained tokens without the first position, which nothing predicts', () => {
    assert.equal(trainedTokenCount({ labels: [1, 5, M, 7] }), 2);
  });

  test('fails when every example is masked out, naming the data set and the fix', () => {
    const f = makePromptTokenizer(tokenizer, prompter, { cutoffLen: 4, trainOnInputs: false, addEosToken: false });
    assert.throws(
      () => requireTrainedTokens([record('long instruction', 'x'), record('another one', 'y')].map(f), 'data.json'),
      (e: Error) => e instanceof UserError && /data\.json: every example is masked out.*--cutoff_len.*--train_on_inputs/.test(e.message),
    );
    const ok = requireTrainedTokens([record('long instruction', 'x'), record('a', 'y')].map(f), 'data.json');
    assert.equal(ok.length, 2);
  });
});

describe('long texts: only a prefix is tokenized, with the same result', () => {
  test('an 8 MB record is tokenized as a prefix sized from cutoff_len, not whole', () => {
    const seen: number[] = [];
    const spy: Tokenizer = Object.assign(Object.create(tokenizer) as Tokenizer, {
      encode: (text: string, o?: { addBos?: boolean; addEos?: boolean }) => (seen.push(text.length), tokenizer.encode(text, o)),
    });
    const f = makePromptTokenizer(spy, prompter, { cutoffLen: 256, trainOnInputs: false, addEosToken: false });
    const long = 'word '.repeat(1_600_000);
    const e = f(record('ab', long));
    assert.deepEqual(e.input_ids, [1, ...ids(`ab>${long}`).slice(0, 255)]);
    assert.ok(Math.max(...seen) < 20_000, `tokenized ${Math.max(...seen)} characters of ${long.length}`);
  });

  test('on real data and real tokenizers, the prefix gives the same first tokens as the whole text', (t) => {
    if (!needShared(t, 'data') || !needShared(t, 'fixtures', 'tokenizers')) return;
    const p = Prompter.load('alpaca');
    const files = ['alpaca_data_first335.json', 'llamafactory_alpaca_en_demo.json', 'llamafactory_alpaca_zh_demo.json', 'llamafactory_identity.json'];
    const texts = files.flatMap((f) => (JSON.parse(readFileSync(sharedPath('data', f), 'utf8')) as { instruction: string; input: string; output: string }[])
      .slice(0, 300).map((r) => p.generatePrompt(r.instruction, r.input, r.output)));
    texts.push(texts.slice(0, 200).join('\n'), texts.slice(-400, -100).join('\n'), texts.slice(-400, -100).join(''));
    let prefixes = 0;
    for (const dir of [sharedPath('fixtures', 'tokenizers', 'llama2'), sharedPath('fixtures', 'tokenizers', 'llama2-hf5')]) {
      const tok = loadTokenizer(dir);
      for (const text of texts) {
        const whole = tok.encode(text, { addBos: false, addEos: false });
        for (const count of [2, 5, 13, 64]) {
          if (text.length > count * 16) prefixes++;
          assert.deepEqual(encodeHead(tok, text, count).slice(0, count), whole.slice(0, count), `${dir}, ${count} tokens of ${JSON.stringify(text.slice(0, 80))}`);
        }
      }
    }
    assert.ok(prefixes > 2000, `only ${prefixes} texts were long enough to be cut`);
  });
});
