// Chat messages to a prompt (server/chat.ts): a Jinja chat template with the tokenizer's special tokens,
// or the prompt template with the one user message as the instruction; message validation; and a real
// tokenizer.json turning the template's BOS text into the BOS id.

import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Prompter } from '../../../src/data/prompter.ts';
import type { Runtime } from '../../../src/generate/runtime.ts';
import { chatPrompt, parseMessages } from '../../../src/server/chat.ts';
import { loadTokenizer } from '../../../src/tokenizer/load.ts';
import { readTokenizerSettings } from '../../../src/tokenizer/tokenizer-config.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';

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

test('with a real tokenizer.json, the template\'s "<s>" text becomes the one BOS id', async (t) => {
  if (!needShared(t, 'fixtures', 'tokenizers', 'llama2-hf5', 'tokenizer.json')) return;
  const dir = mkdtempSync(join(tmpdir(), 'chat-tokenizer-'));
  try {
    const source = sharedPath('fixtures', 'tokenizers', 'llama2-hf5');
    copyFileSync(join(source, 'tokenizer.json'), join(dir, 'tokenizer.json'));
    const config = JSON.parse(readFileSync(join(source, 'tokenizer_config.json'), 'utf8'));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...config, chat_template: TEMPLATE }));
    const tokenizer = loadTokenizer(dir);
    const rt = { ...runtime(null), tokenizer, tokenizerConfig: readTokenizerSettings(dir).rawConfig, chatTemplate: TEMPLATE } as Runtime;
    const prompt = chatPrompt(rt, parseMessages([{ role: 'user', content: 'Hi' }], 10));
    const ids = tokenizer.encode(prompt.text, { addBos: prompt.addBos });
    assert.equal(ids[0], tokenizer.bosId);
    assert.equal(ids.filter((id) => id === tokenizer.bosId).length, 1);
    assert.equal(tokenizer.decode(ids, { skipSpecialTokens: true }), '[INST] Hi [/INST]');
  } finally {
    rmSync(dir, { recursive: true });
  }
});
