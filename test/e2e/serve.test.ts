// `alpaca-lora serve`'s OpenAI-compatible API with a plain HTTP client, on the trainer fixture (a 32000-token
// tiny LLaMA) and its fine-tuned adapter: models, completions and chat (JSON and SSE), adapters by `model`,
// 32 concurrent requests, malformed bodies (400, 404, 405, 413), the API key (401), a full queue (429),
// and a disconnected client freeing its slot.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { needShared, sharedPath } from '../helpers/shared.ts';
import { sseEvents, startServe, waitFor, type RunningServer } from './serve-helper.ts';

const BASE = ['fixtures', 'trainer', 'base'];
let server: RunningServer | null = null;

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const r = await fetch(server!.url + path, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, json: () => JSON.parse(text) };
}

before(async () => {
  if (!existsSync(sharedPath(...BASE, 'tokenizer.model'))) return; // each test then skips (or fails under CI) via needShared
  server = await startServe(['--base_model', sharedPath(...BASE), '--lora_weights', `tuned=${sharedPath('fixtures', 'trainer', 'final_adapter')}`]);
});
after(() => server?.stop());

test('/v1/models lists the base model and the adapter', async (t) => {
  if (!needShared(t, ...BASE, 'tokenizer.model')) return;
  const r = await (await fetch(`${server!.url}/v1/models`)).json();
  assert.deepEqual(r.data.map((m: { id: string }) => m.id), ['base', 'tuned']);
});

test('completions: JSON and SSE give the same greedy text; `model` picks the adapter; `n` choices', async (t) => {
  if (!needShared(t, ...BASE, 'tokenizer.model')) return;
  const request = { model: 'base', prompt: 'The quick brown fox', max_tokens: 12, temperature: 0, ignore_eos: true };
  const plain = await post('/v1/completions', request);
  assert.equal(plain.status, 200, plain.text);
  const body = plain.json();
  assert.equal(body.object, 'text_completion');
  assert.equal(body.choices[0].finish_reason, 'length');
  assert.equal(body.usage.completion_tokens, 12);
  const streamed = await post('/v1/completions', { ...request, stream: true, stream_options: { include_usage: true } });
  assert.equal(streamed.status, 200);
  assert.match(streamed.headers.get('content-type')!, /^text\/event-stream/);
  const events = sseEvents(streamed.text);
  assert.equal(events.at(-1), '[DONE]');
  const chunks = events.slice(0, -1) as { choices: { text: string; finish_reason: string | null }[]; usage?: { completion_tokens: number } }[];
  assert.equal(chunks.flatMap((c) => c.choices.map((x) => x.text)).join(''), body.choices[0].text);
  assert.equal(chunks.at(-2)!.choices[0]!.finish_reason, 'length');
  assert.equal(chunks.at(-1)!.usage!.completion_tokens, 12);
  const tuned = await post('/v1/completions', { ...request, model: 'tuned', prompt: [1, 450, 4996], n: 2 });
  assert.equal(tuned.status, 200, tuned.text);
  assert.equal(tuned.json().model, 'tuned');
  assert.deepEqual(tuned.json().choices.map((c: { index: number }) => c.index), [0, 1]);
});

test('chat: the prompt template for one user message, SSE deltas, and a 400 for a conversation it cannot hold', async (t) => {
  if (!needShared(t, ...BASE, 'tokenizer.model')) return;
  const messages = [{ role: 'system', content: 'You are helpful.' }, { role: 'user', content: 'Name three colors.' }];
  const plain = await post('/v1/chat/completions', { messages, max_tokens: 6, temperature: 0 });
  assert.equal(plain.status, 200, plain.text);
  const answer = plain.json().choices[0].message;
  assert.equal(answer.role, 'assistant');
  const streamed = sseEvents((await post('/v1/chat/completions', { messages, max_tokens: 6, temperature: 0, stream: true })).text);
  const deltas = (streamed.slice(0, -1) as { choices: { delta: { role?: string; content?: string } }[] }[]).map((c) => c.choices[0]!.delta);
  assert.equal(deltas[0]!.role, 'assistant');
  assert.equal(deltas.map((d) => d.content ?? '').join(''), answer.content);
  const twoTurns = await post('/v1/chat/completions', { messages: [...messages, { role: 'assistant', content: 'x' }, { role: 'user', content: 'y' }] });
  assert.equal(twoTurns.status, 400);
  assert.equal(twoTurns.json().error.param, 'messages');
});

test('32 concurrent requests are all answered', async (t) => {
  if (!needShared(t, ...BASE, 'tokenizer.model')) return;
  const replies = await Promise.all(Array.from({ length: 32 }, (_, i) =>
    post(i % 2 ? '/v1/completions' : '/v1/chat/completions', i % 2
      ? { prompt: `Number ${i}`, max_tokens: 4, stream: i % 4 === 1 }
      : { messages: [{ role: 'user', content: `Number ${i}` }], max_tokens: 4 })));
  assert.deepEqual(replies.map((r) => r.status), new Array(32).fill(200));
});

test('malformed requests get JSON errors naming the field, and the server stays up', async (t) => {
  if (!needShared(t, ...BASE, 'tokenizer.model')) return;
  const cases: [unknown, string | null][] = [
    ['{not json', null], ['[1,2]', null], ['null', null], ['"text"', null], ['42', null],
    [{}, 'prompt'], [{ prompt: {} }, 'prompt'], [{ prompt: [] }, 'prompt'], [{ prompt: [1, 99999] }, 'prompt'],
    [{ prompt: 'x', max_tokens: 0 }, 'max_tokens'], [{ prompt: 'x', max_tokens: 1e9 }, 'max_tokens'], [{ prompt: 'x', max_tokens: 1.5 }, 'max_tokens'],
    [{ prompt: 'x', temperature: 'hot' }, 'temperature'], [{ prompt: 'x', temperature: -1 }, 'temperature'], [{ prompt: 'x', top_p: 0 }, 'top_p'],
    [{ prompt: 'x', n: 0 }, 'n'], [{ prompt: 'x', n: 100 }, 'n'], [{ prompt: 'x', stop: 5 }, 'stop'], [{ prompt: 'x', stop: [''] }, 'stop'],
    [{ prompt: 'x', stream: 'yes' }, 'stream'], [{ prompt: 'x', frequency_penalty: 1 }, 'frequency_penalty'], [{ prompt: 'x', bogus: 1 }, 'bogus'],
    [{ prompt: 'x'.repeat(5000) }, 'prompt'], [{ prompt: 'x', stream_options: 3 }, 'stream_options'], [{ prompt: 'x', stream: true, num_beams: 2 }, 'num_beams'],
  ];
  for (const [body, param] of cases) {
    const r = await post('/v1/completions', body);
    assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 60)}: ${r.text}`);
    assert.equal(r.json().error.param, param, JSON.stringify(body).slice(0, 60));
  }
  for (const body of [{}, { messages: [] }, { messages: [{ role: 'robot', content: 'x' }] }, { messages: [{ role: 'user', content: 5 }] }, { messages: 'hi' }]) {
    assert.equal((await post('/v1/chat/completions', body)).status, 400, JSON.stringify(body));
  }
  assert.equal((await post('/v1/completions', { prompt: 'x', model: 'nope' })).status, 404);
  assert.equal((await post('/v1/completions', 'x'.repeat(2 << 20))).status, 413);
  assert.equal((await fetch(`${server!.url}/v1/completions`)).status, 405);
  assert.equal((await fetch(`${server!.url}/nothing`)).status, 404);
  assert.equal((await fetch(`${server!.url}/v1/models`)).status, 200);
});

test('API key, a full queue (429) and a disconnected client freeing its slot', async (t) => {
  if (!needShared(t, ...BASE, 'tokenizer.model')) return;
  // one row per batch: the second request waits in the queue, the third finds it full
  const small = await startServe(['--base_model', sharedPath(...BASE), '--api_key', 'sesame', '--queue_size', '1', '--max_batch_size', '1']);
  try {
    const auth = { Authorization: 'Bearer sesame' };
    const call = (body: unknown, signal?: AbortSignal, headers = auth) =>
      fetch(`${small.url}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body), signal });
    assert.equal((await call({ prompt: 'x', max_tokens: 1 }, undefined, {} as typeof auth)).status, 401);
    assert.equal((await call({ prompt: 'x', max_tokens: 1 }, undefined, { Authorization: 'Bearer wrong' })).status, 401);
    assert.equal((await fetch(`${small.url}/api/info`)).status, 200, 'the page can learn that it needs a key');
    const health = async () => (await fetch(`${small.url}/health`)).json() as Promise<{ running: boolean; waiting: number }>;
    const long = { prompt: 'Once', max_tokens: 2048, ignore_eos: true, temperature: 1, stream: true };
    const first = new AbortController(), second = new AbortController();
    const running = await call(long, first.signal);
    assert.equal(running.status, 200);
    await running.body!.getReader().read(); // the first chunk: it is generating
    const waiting = call(long, second.signal).catch(() => null);
    await waitFor('a waiting request', async () => (await health()).waiting === 1);
    const refused = await call({ prompt: 'x', max_tokens: 1 });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.equal((await refused.json()).error.type, 'rate_limit_error');
    second.abort();
    first.abort();
    await waiting;
    await waitFor('the slot to be freed', async () => {
      const h = await health();
      return !h.running && h.waiting === 0;
    }, 3000);
    const after = await call({ prompt: 'x', max_tokens: 2 });
    assert.equal(after.status, 200);
  } finally {
    await small.stop();
  }
});
