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
import { chatPrompt, parseMessages, prepareChatTemplate } from '../../../src/server/chat.ts';
import { ChatTemplateRenderer, TemplateError, TemplateLimitError } from '../../../src/data/chat-renderer.ts';
import { RequestError } from '../../../src/server/request-error.ts';
import { loadTokenizer } from '../../../src/tokenizer/load.ts';
import { readTokenizerSettings } from '../../../src/tokenizer/tokenizer-config.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';

const TEMPLATE = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]{% elif m['role'] == 'assistant' %} {{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}";

function runtime(chatTemplate: string | null): Runtime {
  return { chatTemplate, tokenizerConfig: { bos_token: '<s>', eos_token: { content: '</s>' } }, prompter: Prompter.load('alpaca') } as unknown as Runtime;
}

test('a chat template renders the conversation with the special tokens, adding no BOS of its own', async () => {
  const messages = parseMessages([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }, { role: 'user', content: [{ type: 'text', text: 'Bye' }] }], 10);
  assert.deepEqual(await chatPrompt(runtime(TEMPLATE), messages), { text: '<s>[INST] Hi [/INST] Hello</s>[INST] Bye [/INST]', addBos: false, stop: [] });
});

test('without a chat template, one user message is the instruction of the prompt template', async () => {
  const p = await chatPrompt(runtime(null), parseMessages([{ role: 'system', content: 'ignored' }, { role: 'user', content: 'Name a color.' }], 10));
  assert.equal(p.text, Prompter.load('alpaca').generatePrompt('Name a color.'));
  assert.deepEqual([p.addBos, p.stop], [true, ['### Response:']]);
  await assert.rejects(chatPrompt(runtime(null), parseMessages([{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }], 10)), /one user message/);
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
    const prompt = await chatPrompt(rt, parseMessages([{ role: 'user', content: 'Hi' }], 10));
    const ids = tokenizer.encode(prompt.text, { addBos: prompt.addBos });
    assert.equal(ids[0], tokenizer.bosId);
    assert.equal(ids.filter((id) => id === tokenizer.bosId).length, 1);
    assert.equal(tokenizer.decode(ids, { skipSpecialTokens: true }), '[INST] Hi [/INST]');
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('a template that loops for ever or fills the heap fails its render, not the process; the next render works', async (t) => {
  const source =
    "{% if messages[0]['content'] == 'loop' %}{% for i in range(3000) %}{% for j in range(3000) %}{% for k in range(3000) %}{% endfor %}{% endfor %}{% endfor %}" +
    "{% elif messages[0]['content'] == 'heap' %}{% for i in range(30000000) %}{% endfor %}" +
    "{% elif messages[0]['content'] == 'grow' %}{% set ns = namespace(s='x') %}{% for i in range(24) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}" +
    "{% elif messages[0]['content'] == 'huge' %}{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}" +
    "{% elif messages[0]['content'] == 'raise' %}{{ raise_exception('roles must alternate') }}{% else %}ok {{ messages[0]['content'] }}{% endif %}";
  const renderer = (ms: number) => {
    const r = new ChatTemplateRenderer(source, { ms, heapMb: 64, chars: 1 << 20 });
    t.after(() => r.close());
    return (content: string) => r.render({ messages: [{ role: 'user', content }] });
  };
  const quick = renderer(1500);
  await assert.rejects(quick('loop'), (e: Error) => e instanceof TemplateLimitError && /ran past 1500 ms/.test(e.message));
  assert.equal(await quick('hi'), 'ok hi');
  const patient = renderer(60_000); // the heap fills before the time runs out, even on a busy machine
  await assert.rejects(patient('heap'), (e: Error) => e instanceof TemplateLimitError && /needed more than 64 MB/.test(e.message));
  await assert.rejects(patient('grow'), (e: Error) => e instanceof TemplateLimitError && /wrote 16777216 characters, more than 1048576/.test(e.message));
  await assert.rejects(patient('huge'), (e: Error) => e instanceof TemplateLimitError && /a value too large \(Invalid string length\)/.test(e.message));
  await assert.rejects(patient('raise'), (e: Error) => e instanceof TemplateError && /roles must alternate/.test(e.message));
  assert.equal(await patient('again'), 'ok again');
});

test('through chatPrompt: a template that does not parse is a 500 (and prepareChatTemplate reports it at start); one that raises is a 400', async () => {
  const broken = runtime('{% for m in messages %}');
  assert.match(prepareChatTemplate(broken)!.message, /./);
  await assert.rejects(chatPrompt(broken, parseMessages([{ role: 'user', content: 'x' }], 10)),
    (e: Error) => e instanceof RequestError && e.status === 500 && /chat template does not parse/.test(e.message));
  assert.equal(prepareChatTemplate(runtime(TEMPLATE)), null);
  await assert.rejects(chatPrompt(runtime("{{ raise_exception('no system role') }}"), parseMessages([{ role: 'user', content: 'x' }], 10)),
    (e: Error) => e instanceof RequestError && e.status === 400 && /refused the conversation: no system role/.test(e.message));
});
