// Conversations through the llama2, llama3 and chatml chat templates: rendered text, token ids and label masks
// checked against expectations written by hand. How they were derived: the expected text is each template's
// format as its model card / the template source lays it out (Llama 2: `<s>[INST] <<SYS>>\n…\n<</SYS>>\n\n… [/INST]
// answer </s>`; Llama 3: `<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`; ChatML: `<|im_start|>role\n…
// <|im_end|>\n`), written out for one two-turn conversation with a system message and split by hand into prompt
// and answer pieces; the answer pieces are each assistant turn's content plus what the template writes after it.
// The test tokenizer gives every character its own id (code point + 1000) and each special token one small id, so
// the ids of a piece are its characters' (or specials') ids in order, and the trained counts below are counted by eye.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ChatTemplateRenderer, type TemplateTokens } from '../../../src/data/chat-renderer.ts';
import { chooseChatTemplate } from '../../../src/data/chat-template-source.ts';
import { tokenizeConversation } from '../../../src/data/chat-tokenize.ts';
import type { ChatMessage } from '../../../src/data/conversation.ts';
import { renderedTextEncoder } from '../../../src/data/encode-rendered.ts';
import { IGNORE_INDEX } from '../../../src/data/tokenize.ts';
import { loadTokenizer } from '../../../src/tokenizer/load.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';
import { SpecialCharTokenizer } from './special-char-tokenizer.ts';

const CONVERSATION: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello!' },
  { role: 'user', content: '2+2?' },
  { role: 'assistant', content: '4' },
];

interface Case {
  template: string;
  specials: Record<string, number>;
  bos: string;
  eos: string;
  /** [text, trained] pieces, in order, written by hand. */
  pieces: [string, boolean][];
  /** Tokens of each trained piece, counted by hand (characters + one per special token). */
  trainedCounts: number[];
}

const CASES: Case[] = [
  {
    template: 'llama2', specials: { '<s>': 1, '</s>': 2 }, bos: '<s>', eos: '</s>',
    pieces: [
      ['<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]', false],
      [' Hello! </s>', true], // ' ' + 'Hello!' + ' ' + eos: 8 characters + </s>
      ['<s>[INST] 2+2? [/INST]', false],
      [' 4 </s>', true], // ' 4 ' + </s>
    ],
    trainedCounts: [9, 4],
  },
  {
    template: 'llama3', specials: { '<|begin_of_text|>': 1, '<|eot_id|>': 2, '<|start_header_id|>': 3, '<|end_header_id|>': 4 }, bos: '<|begin_of_text|>', eos: '<|eot_id|>',
    pieces: [
      ['<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n', false],
      ['Hello!<|eot_id|>', true], // 6 characters + <|eot_id|>
      ['<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n', false],
      ['4<|eot_id|>', true],
    ],
    trainedCounts: [7, 2],
  },
  {
    template: 'chatml', specials: { '<|im_start|>': 3, '<|im_end|>': 4, '<s>': 1, '</s>': 2 }, bos: '<s>', eos: '</s>',
    pieces: [
      ['<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n', false],
      ['Hello!<|im_end|>\n', true], // 6 characters + <|im_end|> + newline
      ['<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n', false],
      ['4<|im_end|>\n', true],
    ],
    trainedCounts: [8, 3],
  },
];

const tokensFor = (c: Case): TemplateTokens => ({ bos_token: c.bos, eos_token: c.eos, unk_token: '', pad_token: '' });

for (const c of CASES) {
  describe(`the ${c.template} template`, () => {
    const tokenizer = new SpecialCharTokenizer(c.specials, c.specials[c.bos]!, c.specials[c.eos]!);
    const renderer = new ChatTemplateRenderer(chooseChatTemplate(c.template, '', {}).source);
    const encode = renderedTextEncoder(tokenizer);
    const run = (cutoffLen: number, trainOnInputs = false) => tokenizeConversation(renderer, tokensFor(c), encode, CONVERSATION, { cutoffLen, trainOnInputs });
    const expectedIds = c.pieces.flatMap(([text]) => tokenizer.encode(text, { addBos: false }));
    const expectedLabels = c.pieces.flatMap(([text, trained]) => tokenizer.encode(text, { addBos: false }).map((id) => (trained ? id : IGNORE_INDEX)));

    test('renders the conversation as the template lays it out', async () => {
      const e = await run(4096);
      assert.equal(e.text, c.pieces.map(([text]) => text).join(''));
      await renderer.close();
    });

    test('token ids and labels: only each answer and its end-of-turn tokens train', async () => {
      const e = await run(4096);
      assert.deepEqual(e.input_ids, expectedIds);
      assert.deepEqual(e.labels, expectedLabels);
      const trainedRuns = runsOfTrained(e.labels);
      assert.deepEqual(trainedRuns.map((r) => r.length), c.trainedCounts);
      assert.equal(e.labels.at(-1 - (c.template === 'chatml' ? 1 : 0)), c.specials[c.template === 'chatml' ? '<|im_end|>' : c.eos], 'the end-of-turn token trains');
      assert.deepEqual([e.fullLength, e.droppedTurns], [expectedIds.length, 0]);
      await renderer.close();
    });

    test('train_on_inputs trains every token', async () => {
      const e = await run(4096, true);
      assert.deepEqual(e.labels, expectedIds);
      await renderer.close();
    });

    test('cutoff_len drops whole trailing turns; a first answer too long is cut; a prompt too long trains nothing', async () => {
      const firstTurnEnd = tokenizer.encode(c.pieces[0]![0] + c.pieces[1]![0], { addBos: false }).length;
      const dropped = await run(expectedIds.length - 1);
      assert.deepEqual(dropped.input_ids, expectedIds.slice(0, firstTurnEnd), 'the example ends after the first answer');
      assert.deepEqual(dropped.labels, expectedLabels.slice(0, firstTurnEnd));
      assert.deepEqual([dropped.droppedTurns, dropped.fullLength], [1, expectedIds.length]);

      const mid = await run(firstTurnEnd - 2);
      assert.deepEqual(mid.input_ids, expectedIds.slice(0, firstTurnEnd - 2), 'the first answer is cut at cutoff_len');
      assert.equal(runsOfTrained(mid.labels)[0]!.length, c.trainedCounts[0]! - 2);

      const promptLength = tokenizer.encode(c.pieces[0]![0], { addBos: false }).length;
      const none = await run(promptLength);
      assert.ok(none.labels.every((l) => l === IGNORE_INDEX));
      await renderer.close();
    });
  });
}

/** The runs of consecutive trained labels. */
function runsOfTrained(labels: readonly number[]): number[][] {
  const runs: number[][] = [];
  labels.forEach((l, i) => {
    if (l === IGNORE_INDEX) return;
    if (i > 0 && labels[i - 1] !== IGNORE_INDEX) runs.at(-1)!.push(l);
    else runs.push([l]);
  });
  return runs;
}

describe('a SentencePiece tokenizer.model (no special-token matching of its own)', () => {
  test('the llama2 template\'s <s> and </s> text become BOS and EOS ids; an answer trains through its EOS', async (t) => {
    if (!needShared(t, 'fixtures', 'tokenizers', 'llama2', 'tokenizer.model')) return;
    const tokenizer = loadTokenizer(sharedPath('fixtures', 'tokenizers', 'llama2'));
    const renderer = new ChatTemplateRenderer(chooseChatTemplate('llama2', '', {}).source);
    const tokens = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: '' };
    const e = await tokenizeConversation(renderer, tokens, renderedTextEncoder(tokenizer), CONVERSATION, { cutoffLen: 4096, trainOnInputs: false });
    await renderer.close();
    // BOS opens each [INST] block, EOS closes each answer; nowhere is "<s>" spelt out as characters
    assert.deepEqual(e.input_ids.flatMap((id, i) => (id === 1 ? [i] : [])).length, 2);
    assert.equal(e.input_ids.filter((id) => id === 2).length, 2);
    assert.ok(!tokenizer.decode(e.input_ids.filter((id) => id > 2)).includes('<s>'));
    const runs = runsOfTrained(e.labels);
    assert.equal(runs.length, 2);
    assert.equal(tokenizer.decode(runs[0]!, { skipSpecialTokens: true }).trim(), 'Hello!');
    assert.equal(runs[0]!.at(-1), 2);
    assert.equal(tokenizer.decode(runs[1]!, { skipSpecialTokens: true }).trim(), '4');
  });

  test('splitting at special-token text gives the ids tokenizer.json\'s own special-token matching gives', (t) => {
    if (!needShared(t, 'fixtures', 'tokenizers', 'llama2', 'tokenizer.model') || !needShared(t, 'fixtures', 'tokenizers', 'llama2-hf5', 'tokenizer.json')) return;
    const sentencePiece = renderedTextEncoder(loadTokenizer(sharedPath('fixtures', 'tokenizers', 'llama2')));
    const tokenizerJson = renderedTextEncoder(loadTokenizer(sharedPath('fixtures', 'tokenizers', 'llama2-hf5')));
    const text = CASES[0]!.pieces.map(([piece]) => piece).join('');
    assert.deepEqual(sentencePiece(text), tokenizerJson(text));
    // "<s>[INST]" is 1, 518 ("▁["), 25580 ("INST"), 29962 ("]") in LLaMA-2's vocabulary, as transformers encodes it
    assert.deepEqual(sentencePiece(text).slice(0, 4), [1, 518, 25580, 29962]);
  });
});
