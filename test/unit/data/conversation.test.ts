// Conversation data: ShareGPT, OpenAI messages and Alpaca with system/history read into one message list, with
// LLaMA-Factory's column and tag names; bad records (roles out of turn, unknown roles, empty answers, a template
// that raises) are errors naming the file and record, or are counted and left out with --skip_bad_records; which
// records go through the chat template and what trains by default.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadDataset, type DataRecord } from '../../../src/data/dataset.ts';
import { makeExampleBuilder } from '../../../src/data/examples.ts';
import { IGNORE_INDEX } from '../../../src/data/tokenize.ts';
import { UserError } from '../../../src/errors.ts';
import { CharTokenizer } from './char-tokenizer.ts';

const dir = mkdtempSync(join(tmpdir(), 'conversation-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: unknown[]) => {
  const path = join(dir, name);
  writeFileSync(path, name.endsWith('.jsonl') ? content.map((r) => JSON.stringify(r)).join('\n') : JSON.stringify(content));
  return path;
};
const messagesOf = (r: DataRecord) => (r.kind === 'conversation' ? r.messages : null);

describe('formats', () => {
  test('ShareGPT conversations and OpenAI messages give the same messages; a system column is put first', async () => {
    const sharegpt = await loadDataset(file('sg.json', [
      { system: 'Be brief.', conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Hello!' }] },
    ]));
    const openai = await loadDataset(file('oa.jsonl', [
      { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: [{ type: 'text', text: 'Hello!' }] }] },
    ]));
    const expected = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }];
    assert.deepEqual([sharegpt.format, openai.format], ['sharegpt', 'openai']);
    assert.deepEqual(messagesOf(sharegpt.records[0]!), expected);
    assert.deepEqual(messagesOf(openai.records[0]!), expected);
  });

  test('column and tag names are mapped (LLaMA-Factory\'s role_tag, content_tag, user_tag, assistant_tag)', async () => {
    const path = file('mapped.json', [{ dialog: [{ speaker: 'client', text: 'Hi' }, { speaker: 'agent', text: 'Hello!' }] }]);
    const d = await loadDataset(path, { format: 'sharegpt', conversation: { messages: 'dialog', roleTag: 'speaker', contentTag: 'text', userTag: 'client', assistantTag: 'agent' } });
    assert.deepEqual(messagesOf(d.records[0]!), [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }]);
  });

  test('Alpaca records keep LLaMA-Factory\'s system and history fields', async () => {
    const d = await loadDataset(file('hist.json', [{ instruction: 'And 3+3?', input: '', output: '6', system: 'Math tutor.', history: [['2+2?', '4']] }]));
    const r = d.records[0]!;
    assert.ok(r.kind === 'instruction');
    assert.deepEqual([r.system, r.history], ['Math tutor.', [['2+2?', '4']]]);
  });
});

describe('bad records', () => {
  const cases: [string, unknown, RegExp][] = [
    ['roles out of turn', { conversations: [{ from: 'human', value: 'a' }, { from: 'human', value: 'b' }, { from: 'gpt', value: 'c' }] }, /turn 1 is "user" where "assistant" was due/],
    ['an unknown role', { conversations: [{ from: 'human', value: 'a' }, { from: 'robot', value: 'b' }] }, /conversations\[1\]\.from is "robot", not a known role.*--user_tag/],
    ['an empty answer', { conversations: [{ from: 'human', value: 'a' }, { from: 'gpt', value: '  ' }] }, /assistant turn 1 is empty/],
    ['no answer at the end', { conversations: [{ from: 'human', value: 'a' }] }, /ends with a user turn/],
  ];
  for (const [what, record, message] of cases) {
    test(`${what}: an error naming the file and record, and what to do`, async () => {
      const good = { conversations: [{ from: 'human', value: 'a' }, { from: 'gpt', value: 'b' }] };
      const path = file('bad.jsonl', [good, record]);
      await assert.rejects(loadDataset(path), (e: Error) => e instanceof UserError && e.message.startsWith(`${path}: record 1 (line 2): `) &&
        message.test(e.message) && /--skip_bad_records/.test(e.message));
    });
  }

  test('--skip_bad_records leaves them out and reports the count with the first reasons', async () => {
    const good = { conversations: [{ from: 'human', value: 'a' }, { from: 'gpt', value: 'b' }] };
    const path = file('mixed.jsonl', [good, ...cases.slice(0, 2).map(([, r]) => r), good]);
    const warnings: string[] = [];
    const d = await loadDataset(path, { skipBadRecords: true, warn: (m) => warnings.push(m) });
    assert.equal(d.records.length, 2);
    assert.equal(d.bad.length, 2);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /left out 2 of 4 records that cannot be trained on \(--skip_bad_records\):\n {2}.*record 1 \(line 2\): turn 1/);
  });

  test('a template that raises names the record; with --skip_bad_records it is counted', async () => {
    const template = join(dir, 'picky.jinja');
    writeFileSync(template, "{% for m in messages %}{% if m.content == 'forbidden' %}{{ raise_exception('no forbidden words') }}{% endif %}{{ m.content }}{% endfor %}");
    const path = file('picky.jsonl', [
      { messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] },
      { messages: [{ role: 'user', content: 'forbidden' }, { role: 'assistant', content: 'b' }] },
    ]);
    const d = await loadDataset(path);
    const settings = { cutoffLen: 64, trainOnInputs: null, addEosToken: false, promptTemplateName: 'alpaca', chatTemplate: template, tokenizerDir: null };
    const strict = makeExampleBuilder(new CharTokenizer(), settings, d.records);
    await assert.rejects(strict.build(d.records), new RegExp(`${path}: record 1 \\(line 2\\): the chat template refused it: .*no forbidden words.*--skip_bad_records`));
    await strict.close();
    const lenient = makeExampleBuilder(new CharTokenizer(), { ...settings, skipBadRecords: true }, d.records);
    const built = await lenient.build(d.records);
    await lenient.close();
    assert.equal(built.examples.length, 1);
    assert.deepEqual(built.bad.length, 1);
  });
});

describe('which records go through the chat template, and what trains', () => {
  const tokenizer = new CharTokenizer();
  const base = { cutoffLen: 512, trainOnInputs: null, addEosToken: false, promptTemplateName: 'alpaca', tokenizerDir: null };
  const plain: DataRecord = { kind: 'instruction', instruction: 'Say hi.', input: '', output: 'Hi' };

  test('plain Alpaca records go the seed\'s way and train on everything by default, as the seed', async () => {
    const b = makeExampleBuilder(tokenizer, base, [plain]);
    assert.equal(b.chatTemplate, null);
    assert.equal(b.trainOnInputs, true);
    const [e] = (await b.build([plain])).examples;
    assert.ok(e!.labels.every((l) => l !== IGNORE_INDEX));
  });

  test('a record with history makes the run chat data: the alpaca chat template (no tokenizer template), answers only', async () => {
    const withHistory: DataRecord = { ...plain, history: [['Hello?', 'Yes.']] };
    const b = makeExampleBuilder(tokenizer, base, [plain, withHistory]);
    assert.equal(b.chatTemplate?.name, 'alpaca');
    assert.equal(b.trainOnInputs, false);
    const [, e] = (await b.build([plain, withHistory])).examples;
    await b.close();
    const trained = tokenizer.decode(e!.labels.filter((l) => l !== IGNORE_INDEX));
    assert.equal(trained, 'Yes.</s>Hi</s>', 'each answer and its EOS train, nothing else');
  });

  test('--chat_template renders plain Alpaca records as one-turn conversations; the seed\'s prompt_no_input text results', async () => {
    const b = makeExampleBuilder(tokenizer, { ...base, chatTemplate: 'alpaca' }, [plain]);
    const [e] = (await b.build([plain])).examples;
    await b.close();
    const seedPrompt = 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nSay hi.\n\n### Response:\n';
    assert.equal(tokenizer.decode(e!.input_ids), `${seedPrompt}Hi</s>`);
  });
});
