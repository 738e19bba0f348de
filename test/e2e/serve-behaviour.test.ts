// `alpaca-lora serve` as an operator sees it, on the trainer fixture: the access log (one line per request, the
// prompt only with --log_prompts), --cors_origin (off by default; preflights answered), the page's queue
// position, a busy port refused before the model loads, and graceful shutdown on SIGTERM/SIGINT (requests in
// flight finish within --shutdown_timeout, else are cancelled with a reason; exit 0).

import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { parseCorsOrigins } from '../../src/server/cors.ts';
import { runCli } from '../helpers/cli.ts';
import { needShared, sharedPath } from '../helpers/shared.ts';
import { startServe, streamEvents, waitFor, type RunningServer } from './serve-helper.ts';

const BASE = ['fixtures', 'trainer', 'base'];
const have = (t: Parameters<typeof needShared>[0]) => needShared(t, ...BASE, 'tokenizer.model');
const serve = (...flags: string[]) => startServe(['--base_model', sharedPath(...BASE), ...flags]);
const json = { 'Content-Type': 'application/json' };
const ORIGIN = 'http://localhost:3000';
const ONE_ROW = ['--max_batch_size', '1'];
let plain: RunningServer | null = null; // one row per batch, so a second request waits
let open: RunningServer | null = null; // --log_prompts --cors_origin (two origins) --api_key k
before(async () => {
  if (!existsSync(sharedPath(...BASE, 'tokenizer.model'))) return; // each test then skips (or fails under CI) via needShared
  [plain, open] = await Promise.all([serve(...ONE_ROW), serve('--log_prompts', '--cors_origin', `${ORIGIN},https://app.example`, '--api_key', 'k')]);
});
after(() => Promise.all([plain?.stop(), open?.stop()]));

const LOG_LINE = /^\d{4}-\d\d-\d\dT[\d:.]+Z 127\.0\.0\.1 (\S+) (\S+) (\d{3}|-) (\d+) tokens (\d+) ms( \(client closed\))?( prompt=.*)?$/;

function post(server: RunningServer, path: string, body: unknown, signal?: AbortSignal, key?: string): Promise<Response> {
  return fetch(server.url + path, { method: 'POST', headers: key ? { ...json, Authorization: `Bearer ${key}` } : json, body: JSON.stringify(body), signal });
}

/** The access log lines printed so far, parsed. */
function logLines(server: RunningServer) {
  return server.output().stdout.split('\n').flatMap((line) => {
    const m = LOG_LINE.exec(line);
    return m ? [{ line, method: m[1], path: m[2], status: m[3], tokens: Number(m[4]), closed: m[6] !== undefined, prompt: m[7]?.slice(' prompt='.length) }] : [];
  });
}

/** A long greedy stream, read until its first text arrives. */
async function longStream(server: RunningServer, signal?: AbortSignal) {
  const response = await post(server, '/v1/completions', { prompt: 'Once upon a time', max_tokens: 240, temperature: 0, ignore_eos: true, stream: true }, signal);
  assert.equal(response.status, 200);
  const events = streamEvents(response);
  assert.ok(!(await events.next()).done);
  return events;
}

test('the access log has one line per request (method, path, status, tokens, ms) and no prompt unless --log_prompts', async (t) => {
  if (!have(t)) return;
  const quiet = plain!;
  const r = await post(quiet, '/v1/completions', { prompt: 'purple walrus', max_tokens: 3, temperature: 0, ignore_eos: true });
  assert.equal(r.status, 200, await r.text());
  assert.equal((await fetch(`${quiet.url}/no-such-page`)).status, 404);
  const leaving = new AbortController();
  const events = await longStream(quiet, leaving.signal);
  await events.next();
  leaving.abort();
  await waitFor('three log lines', async () => logLines(quiet).length === 3);
  const [completion, missing, left] = logLines(quiet);
  assert.deepEqual({ ...completion, line: undefined }, { line: undefined, method: 'POST', path: '/v1/completions', status: '200', tokens: 3, closed: false, prompt: undefined });
  assert.deepEqual([missing!.method, missing!.path, missing!.status, missing!.tokens], ['GET', '/no-such-page', '404', 0]);
  assert.equal(left!.closed, true, left!.line);
  assert.ok(left!.tokens >= 2 && left!.tokens < 240, `the disconnected stream's tokens are counted up to its cancel: ${left!.line}`);
  const { stdout, stderr } = quiet.output();
  assert.doesNotMatch(stdout + stderr, /walrus|Once upon/, 'prompts stay out of the log');

  const chatty = open!;
  const before = logLines(chatty).length;
  assert.equal((await post(chatty, '/v1/chat/completions', { messages: [{ role: 'user', content: 'purple walrus' }], max_tokens: 2 }, undefined, 'k')).status, 200);
  await waitFor('a log line', async () => logLines(chatty).length === before + 1);
  assert.equal(logLines(chatty).at(-1)!.prompt, JSON.stringify({ messages: [{ role: 'user', content: 'purple walrus' }] }));
});

test('--cors_origin: off by default; allowed origins get the headers and their preflights a 204, others a 403', async (t) => {
  if (!have(t)) return;
  const preflight = (server: RunningServer, from: string) => fetch(`${server.url}/v1/chat/completions`, {
    method: 'OPTIONS', headers: { Origin: from, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type' },
  });
  assert.equal((await fetch(`${plain!.url}/v1/models`, { headers: { Origin: ORIGIN } })).headers.get('access-control-allow-origin'), null);
  assert.equal((await preflight(plain!, ORIGIN)).status, 405);

  const ok = await preflight(open!, ORIGIN);
  assert.equal(ok.status, 204, 'the preflight needs no API key');
  assert.equal(ok.headers.get('access-control-allow-origin'), ORIGIN);
  assert.match(ok.headers.get('access-control-allow-methods')!, /POST/);
  assert.match(ok.headers.get('access-control-allow-headers')!, /Authorization/);
  assert.match(ok.headers.get('vary')!, /Origin/);
  const models = await fetch(`${open!.url}/v1/models`, { headers: { Origin: 'https://app.example', Authorization: 'Bearer k' } });
  assert.equal(models.status, 200);
  assert.equal(models.headers.get('access-control-allow-origin'), 'https://app.example');
  const refused = await fetch(`${open!.url}/v1/models`, { headers: { Origin: ORIGIN } });
  assert.equal(refused.status, 401);
  assert.equal(refused.headers.get('access-control-allow-origin'), ORIGIN, 'a browser can read the 401 and ask for the key');
  const stranger = await preflight(open!, 'http://evil.example');
  assert.equal(stranger.status, 403);
  assert.equal(stranger.headers.get('access-control-allow-origin'), null);
  assert.match((await stranger.json()).error.message, /origin http:\/\/evil\.example is not allowed.*--cors_origin/);

  assert.deepEqual(parseCorsOrigins('*'), ['*']);
  assert.throws(() => parseCorsOrigins('localhost:3000/'), /^UserError: serve: --cors_origin "localhost:3000\/" is not an origin: pass scheme:\/\/host\[:port\]/);
  assert.throws(() => parseCorsOrigins('http://localhost:3000/'), /is not an origin/);
});

test('the page API tells a waiting request its queue position, counting down as the line moves', async (t) => {
  if (!have(t)) return;
  const server = plain!;
  const running = new AbortController();
  await longStream(server, running.signal);
  // the first waiter asks for many tokens and is cancelled only once the second has seen itself move up,
  // so the count-down is observed whatever the polling interval and the machine's speed
  const ahead = new AbortController();
  const page = (instruction: string, maxNew: number, signal?: AbortSignal) =>
    post(server, '/api/generate', { instruction, max_new_tokens: maxNew, temperature: 0 }, signal);
  const first = streamEvents(await page('first', 200, ahead.signal));
  assert.deepEqual((await first.next()).value, { queue_position: 1 });
  const second = streamEvents(await page('second', 2));
  assert.deepEqual((await second.next()).value, { queue_position: 2 });
  running.abort();
  const firstText = await first.next();
  assert.equal('queue_position' in (firstText.value as object), false, 'the first runs next, with no further position');
  assert.deepEqual((await second.next()).value, { queue_position: 1 }, 'the second moves up when the stream ahead leaves');
  ahead.abort();
  const rest: Record<string, unknown>[] = [];
  for await (const e of second) rest.push(e as Record<string, unknown>);
  assert.equal(rest.some((e) => 'queue_position' in e), false);
  assert.equal(rest.at(-1)!.done, true);
});

test('a busy port is one line naming --port, before the model loads', async (t) => {
  const busy = createServer();
  await new Promise<void>((done) => busy.listen(0, '127.0.0.1', done));
  t.after(() => busy.close());
  const port = (busy.address() as { port: number }).port;
  const r = runCli(['serve', '--base_model', '/no/such/model', '--backend', 'js', '--port', String(port)]);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `error: port ${port} on 127.0.0.1 is already in use (EADDRINUSE): pass another --port (--port 0 takes any free one), or stop what listens there\n`);
});

test('SIGTERM: no new requests, a stream in flight finishes within --shutdown_timeout, exit 0', async (t) => {
  if (!have(t)) return;
  const server = await serve('--shutdown_timeout', '60', ...ONE_ROW);
  t.after(() => server.stop());
  const response = await post(server, '/v1/completions', { prompt: 'Hello', max_tokens: 40, temperature: 0, ignore_eos: true, stream: true });
  const events = streamEvents(response);
  await events.next();
  const exit = server.signal('SIGTERM');
  await waitFor('the shutdown to begin', async () => server.output().stderr.includes('shutting down'));
  await assert.rejects(fetch(`${server.url}/health`), 'no new connections');
  const rest = [];
  for await (const e of events) rest.push(e);
  assert.equal(rest.at(-1), '[DONE]');
  assert.equal((rest.at(-2) as { choices: { finish_reason: string }[] }).choices[0]!.finish_reason, 'length');
  assert.equal(await exit, 0);
  assert.match(server.output().stderr, /stopped: 1 requests finished, 0 cancelled/);
});

test('shutdown past its deadline cancels: a stream gets an error event, a queued request a 503; a second signal cancels at once', async (t) => {
  if (!have(t)) return;
  const cases = [['0', ['SIGTERM']], ['60', ['SIGINT', 'SIGINT']]] as const;
  const servers = await Promise.all(cases.map(([timeout]) => serve('--shutdown_timeout', timeout, ...ONE_ROW)));
  t.after(() => Promise.all(servers.map((s) => s.stop())));
  for (const [i, [timeout, signals]] of cases.entries()) {
    const server = servers[i]!;
    const events = await longStream(server);
    const queued = post(server, '/v1/completions', { prompt: 'Hi', max_tokens: 4 });
    await waitFor('the second request to queue', async () => (await (await fetch(`${server.url}/health`)).json()).waiting === 1);
    const exit = server.signal(signals[0]);
    if (signals.length === 2) {
      await waitFor('the shutdown to begin', async () => server.output().stderr.includes('shutting down'));
      server.signal(signals[1]);
    }
    const seen = [];
    for await (const e of events) seen.push(e as { error?: { code: string } });
    assert.equal(seen.at(-1)!.error?.code, 'server_shutdown', `--shutdown_timeout ${timeout}, ${signals.join(' ')}`);
    const late = await queued;
    assert.equal(late.status, 503);
    assert.equal((await late.json()).error.code, 'server_shutdown');
    assert.equal(await exit, 0);
    assert.match(server.output().stderr, /stopped: 0 requests finished, 2 cancelled/);
  }
});
