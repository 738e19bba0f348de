// `alpaca-lora serve` under attack: a 1 MB prompt is refused (400, naming the limit) before it is tokenized, so
// /health does not stall; a chat template that exhausts its heap or time fails that request (500) and the server
// stays up; a template that does not parse is reported once at start.

import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { needShared, sharedPath } from '../helpers/shared.ts';
import { startServe } from './serve-helper.ts';

const BASE = ['fixtures', 'trainer', 'base'];
const TEMPLATE = "{% if messages[0]['content'] == 'heap' %}{% for i in range(300000000) %}{% endfor %}{% endif %}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}";

/** The trainer fixture with `template` as its chat_template. */
function modelWith(t: { after: (fn: () => void) => void }, template: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'serve-limits-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.model']) copyFileSync(sharedPath(...BASE, f), join(dir, f));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<s>', eos_token: '</s>', chat_template: template }));
  return dir;
}

const post = async (url: string, body: unknown) => {
  const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, json: (await r.json()) as { error?: { message: string; code: string | null } } };
};

test('a 1 MB prompt is a quick 400; a template over its heap is a 500 for that request only', async (t) => {
  if (!needShared(t, ...BASE, 'tokenizer.model')) return;
  const server = await startServe(['--base_model', modelWith(t, TEMPLATE)]);
  t.after(() => server.stop());
  const started = Date.now();
  const big = await post(`${server.url}/v1/completions`, { prompt: 'word '.repeat(200_000), max_tokens: 1 });
  assert.equal(big.status, 400);
  assert.match(big.json.error!.message, /the prompt is 1000000 bytes, more than \d+ tokens can hold .*this server takes at most \d+ tokens/);
  assert.equal(big.json.error!.code, 'context_length_exceeded');
  const over = await post(`${server.url}/v1/completions`, { prompt: 'word '.repeat(3000), max_tokens: 1 });
  assert.match(over.json.error!.message, /the prompt is over \d+ tokens/);
  assert.ok(Date.now() - started < 2000, `refusing took ${Date.now() - started} ms`);

  const heap = await post(`${server.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'heap' }], max_tokens: 1 });
  assert.equal(heap.status, 500);
  assert.match(heap.json.error!.message, /the model's chat template did not finish: it (needed more than \d+ MB|ran past \d+ ms)/);
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
  const fine = await post(`${server.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, temperature: 0 });
  assert.equal(fine.status, 200, JSON.stringify(fine.json));
});

test('a chat template that does not parse is reported once at start; completions still work', async (t) => {
  if (!needShared(t, ...BASE, 'tokenizer.model')) return;
  const lines: string[] = [];
  const server = await startServe(['--base_model', modelWith(t, '{% for m in messages %}')], 'js', (text) => lines.push(text));
  t.after(() => server.stop());
  assert.equal((await post(`${server.url}/v1/completions`, { prompt: 'hi', max_tokens: 1 })).status, 200);
  const chat = await post(`${server.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 });
  assert.equal(chat.status, 500);
  assert.match(chat.json.error!.message, /chat template does not parse/);
  assert.equal(lines.join('').match(/warning: the model's chat template does not parse/g)?.length, 1);
});
