// `serve` under concurrent requests, on the js and the cpu backend: eight distinct greedy requests sent at once
// (completions and chat, JSON and SSE, base model and adapter) each get the reply the same request gets alone.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { needCpu } from '../helpers/cpu-backend.ts';
import { needShared, sharedPath } from '../helpers/shared.ts';
import { sseEvents, startServe, writeScaledAdapter } from './serve-helper.ts';

const BASE = ['fixtures', 'trainer', 'base'];
const greedy = { max_tokens: 6, temperature: 0 };
const completion = (model: string, prompt: string, stream: boolean) => ({ path: '/v1/completions', body: { model, prompt, stream, ...greedy } });
// Distinct answers (the same prompt on both models among them), so a mix-up shows. This random model answers every
// chat prompt with newlines, so one chat request only.
const REQUESTS = [
  completion('base', 'Hello', false),
  completion('strong', 'Hello', true),
  completion('base', 'Name three colors.', true),
  completion('strong', 'Name three colors.', false),
  completion('base', 'Good morning', false),
  completion('strong', 'Why is the sky blue?', true),
  completion('base', 'Once upon a time', true),
  { path: '/v1/chat/completions', body: { model: 'strong', messages: [{ role: 'user', content: 'Write a poem.' }], stream: true, ...greedy } },
];

const work = mkdtempSync(join(tmpdir(), 'serve-concurrency-'));
after(() => rmSync(work, { recursive: true, force: true }));

interface Choice { text?: string; message?: { content: string }; delta?: { content?: string }; finish_reason: string | null }

/** A request's answer and finish reason, from the JSON reply or the SSE chunks joined. */
async function ask(url: string, request: (typeof REQUESTS)[number]): Promise<{ text: string; finish: string | null }> {
  const r = await fetch(url + request.path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(request.body) });
  const body = await r.text();
  assert.equal(r.status, 200, body);
  if (!request.body.stream) {
    const c = JSON.parse(body).choices[0] as Choice;
    return { text: c.text ?? c.message!.content, finish: c.finish_reason };
  }
  const choices = (sseEvents(body).slice(0, -1) as { choices: Choice[] }[]).flatMap((c) => c.choices);
  return { text: choices.map((c) => c.text ?? c.delta?.content ?? '').join(''), finish: choices.at(-1)!.finish_reason };
}

for (const backend of ['js', 'cpu'] as const) {
  test(`${backend}: each of 8 concurrent greedy requests gets the reply it gets alone`, async (t) => {
    if (!needShared(t, ...BASE, 'tokenizer.model') || (backend === 'cpu' && needCpu(t) === null)) return;
    const strong = join(work, `strong-${backend}`);
    writeScaledAdapter(sharedPath('fixtures', 'trainer', 'final_adapter'), strong, 4); // changes the greedy text (serve-adapter.test.ts)
    const server = await startServe(['--base_model', sharedPath(...BASE), '--lora_weights', `strong=${strong}`], backend);
    try {
      const alone = [];
      for (const request of REQUESTS) alone.push(await ask(server.url, request));
      assert.equal(new Set(alone.map((a) => a.text)).size, REQUESTS.length, `the answers alone are not all distinct, so a mix-up could hide: ${JSON.stringify(alone)}`);
      const together = await Promise.all(REQUESTS.map((request) => ask(server.url, request)));
      assert.deepEqual(together, alone);
    } finally {
      await server.stop();
    }
  });
}
