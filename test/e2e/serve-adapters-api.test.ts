// Adapters loaded and unloaded while `serve` runs, on the trainer fixture: POST /v1/adapters needs the API key,
// takes only folders under --adapter_dir (403 outside, 404 missing, 409 for a name in use), and the adapter it
// loads answers, in a batch beside the base model, what each request gets alone; DELETE /v1/adapters/NAME stops
// serving it (404 after). The scaled adapter changes the greedy text from the first token (serve-adapter.test.ts).

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { needShared, sharedPath } from '../helpers/shared.ts';
import { chooseChatTemplate } from '../../src/data/chat-template-source.ts';
import { startServe, writeScaledAdapter, type RunningServer } from './serve-helper.ts';

const BASE = ['fixtures', 'trainer', 'base'];
const work = mkdtempSync(join(tmpdir(), 'serve-adapters-api-'));
const allowed = join(work, 'adapters');
let server: RunningServer | null = null;
const auth = { Authorization: 'Bearer sesame', 'Content-Type': 'application/json' };

before(async () => {
  if (!existsSync(sharedPath(...BASE, 'tokenizer.model'))) return; // the test then skips (or fails under CI) via needShared
  mkdirSync(allowed);
  writeScaledAdapter(sharedPath('fixtures', 'trainer', 'final_adapter'), join(allowed, 'strong'), 4);
  writeScaledAdapter(sharedPath('fixtures', 'trainer', 'final_adapter'), join(work, 'outside'), 4);
  writeScaledAdapter(sharedPath('fixtures', 'trainer', 'final_adapter'), join(allowed, 'chatty'), 1);
  writeFileSync(join(allowed, 'chatty', 'chat_template.jinja'), chooseChatTemplate('chatml', '', {}).source); // as finetune saves it
  server = await startServe(['--base_model', sharedPath(...BASE), '--api_key', 'sesame', '--adapter_dir', allowed]);
});
after(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

const post = (body: unknown, headers: Record<string, string> = auth) =>
  fetch(`${server!.url}/v1/adapters`, { method: 'POST', headers, body: JSON.stringify(body) });

async function complete(model: string): Promise<string> {
  const r = await fetch(`${server!.url}/v1/completions`, {
    method: 'POST', headers: auth, body: JSON.stringify({ model, prompt: 'Hello', max_tokens: 8, temperature: 0 }),
  });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  return body.choices[0].text;
}

test('POST and DELETE /v1/adapters: key, folder rules, a mixed batch equal to each request alone, unloading', async (t) => {
  if (!needShared(t, ...BASE, 'tokenizer.model')) return;
  assert.equal((await post({ path: 'strong' }, { 'Content-Type': 'application/json' })).status, 401);
  assert.equal((await post({ path: join(work, 'outside') })).status, 403);
  assert.equal((await post({ path: 'missing' })).status, 404);
  const added = await post({ path: 'strong', name: 'loud' });
  assert.equal(added.status, 201, await added.clone().text());
  assert.equal((await added.json()).id, 'loud');
  assert.equal((await post({ path: 'strong', name: 'loud' })).status, 409);
  const models = await (await fetch(`${server!.url}/v1/models`, { headers: auth })).json();
  assert.deepEqual(models.data.map((m: { id: string }) => m.id), ['base', 'loud']);

  const alone = { loud: await complete('loud'), base: await complete('base') };
  assert.notEqual(alone.loud, alone.base, 'the loaded adapter changes the answer');
  const together = await Promise.all(['loud', 'base', 'loud', 'base'].map((m) => complete(m)));
  assert.deepEqual(together, [alone.loud, alone.base, alone.loud, alone.base]);

  const gone = await fetch(`${server!.url}/v1/adapters/loud`, { method: 'DELETE', headers: auth });
  assert.equal(gone.status, 200);
  const after = await fetch(`${server!.url}/v1/completions`, { method: 'POST', headers: auth, body: JSON.stringify({ model: 'loud', prompt: 'Hello', max_tokens: 2 }) });
  assert.equal(after.status, 404);
  assert.equal((await fetch(`${server!.url}/v1/adapters/loud`, { method: 'DELETE', headers: auth })).status, 404);
  assert.equal(await complete('base'), alone.base);
});

test('an adapter loaded at run time with the chat template it was trained with renders its chat requests with it', async (t) => {
  if (!needShared(t, ...BASE, 'tokenizer.model')) return;
  assert.equal((await post({ path: 'chatty' })).status, 201);
  const chat = (model: string) => fetch(`${server!.url}/v1/chat/completions`, {
    method: 'POST', headers: auth,
    body: JSON.stringify({ model, max_tokens: 2, temperature: 0, messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }, { role: 'user', content: 'Bye' }] }),
  });
  const answered = await chat('chatty');
  assert.equal(answered.status, 200, await answered.clone().text());
  const base = await chat('base'); // the base's tokenizer has no chat template: one user message only
  assert.equal(base.status, 400);
  assert.match((await base.json()).error.message, /no chat template/);
  assert.equal((await fetch(`${server!.url}/v1/adapters/chatty`, { method: 'DELETE', headers: auth })).status, 200);
});
