// Chat messages to a prompt (server/chat.ts): a Jinja chat template with the tokenizer's special tokens,
// or the prompt template with the one user message as the instruction; and message validation.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Prompter } from '../../../src/data/prompter.ts';
import type { Runtime } from '../../../src/generate/runtime.ts';
import { chatPrompt, parseMessages } from '../../../src/server/chat.ts';

const TEMPLATE = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]{% elif m['role'] == 'assistant' %} {{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}";

function runtime(chatTemplate: string | null): Runtime {
  return { chatTemplate, tokenizerConfig: { bos_token: '<s>', eos_token: { content: '</s>' } }, prompter: Prompter.load('alpaca') } as unknown as Runtime;
}

test('a chat template renders the conversation with the special tokens, adding no BOS of its own', () => {
  const messages = parseMessages([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }, { role: 'user', content: [{ type: 'text', text: 'Bye' }] }], 10);
  assert.deepEqual(chatPrompt(runtime(TEMPLATE), messages), { text: '<s>[INST] Hi [/INST] Hello</s>[INST] Bye [/INST]', addBos: false, stop: [] });
});

test('without a chat template, one user message is the instruction of the prompt template', () => {
  const p = chatPrompt(runtime(null), parseMessages([{ role: 'system', content: 'ignored' }, { role: 'user', content: 'Name a color.' }], 10));
  assert.equal(p.text, Prompter.load('alpaca').generatePrompt('Name a color.'));
  assert.deepEqual([p.addBos, p.stop], [true, ['### Response:']]);
  assert.throws(() => chatPrompt(runtime(null), parseMessages([{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }], 10)), /one user message/);
});

test('messages are checked field by field', () => {
  assert.throws(() => parseMessages([], 10), /"messages" must be a list/);
  assert.throws(() => parseMessages([{ role: 'robot', content: 'x' }], 10), /messages\[0\]\.role/);
  assert.throws(() => parseMessages([{ role: 'user', content: [{ type: 'image_url' }] }], 10), /messages\[0\]\.content/);
  assert.throws(() => parseMessages(new Array(11).fill({ role: 'user', content: 'x' }), 10), /1 to 10 messages/);
});
