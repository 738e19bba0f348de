// The generation page in a real browser: Debian's chromium (headless, fresh profile) driven by playwright-core
// against `alpaca-lora serve` on the trainer fixture. Type an instruction, generate with streaming, see the
// text grow, stop it (the server frees its slot), then a short non-streamed generation with its tokens/s. Then
// the page's plain characters, its asking for the API key, its queue position, and a cross-origin API call.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type Page } from 'playwright-core';
import { needShared, PROJECT_ROOT, sharedPath } from '../helpers/shared.ts';
import { startServe, streamEvents, waitFor } from './serve-helper.ts';

const CHROMIUM = '/usr/bin/chromium';
const PUBLIC_DIR = join(PROJECT_ROOT, 'src', 'server', 'public');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function setRange(page: Page, id: string, value: number): Promise<void> {
  await page.$eval(`#${id}`, (el, v) => {
    (el as HTMLInputElement).value = String(v);
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, value);
}

test('type an instruction, stream, watch the text grow, stop; then a non-streamed answer with tokens/s', async (t) => {
  if (!needShared(t, 'fixtures', 'trainer', 'base', 'tokenizer.model')) return;
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: .ci/run installs it with apt-get install chromium`);
    return t.skip(`${CHROMIUM} is missing (apt-get install chromium)`);
  }
  const server = await startServe(['--base_model', sharedPath('fixtures', 'trainer', 'base'), '--lora_weights', `tuned=${sharedPath('fixtures', 'trainer', 'final_adapter')}`]);
  const profile = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
  const browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS, headless: true });
  try {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(server.url);
    await page.waitForFunction(() => (document.getElementById('model') as HTMLSelectElement).options.length === 2);
    assert.equal(await page.inputValue('#model'), 'tuned', 'the adapter is the default, as the seed serves base + adapter');
    assert.equal(await page.inputValue('#num_beams'), '1', 'one beam by default, so the text streams at once');

    await page.fill('#instruction', 'Tell me about alpacas.');
    await setRange(page, 'num_beams', 1);
    await setRange(page, 'temperature', 0.9);
    await setRange(page, 'max_new_tokens', 2000);
    await page.click('#generate');
    await page.waitForFunction(() => (document.getElementById('output') as HTMLTextAreaElement).value.length > 0);
    const early = (await page.inputValue('#output')).length;
    await page.waitForFunction((n) => (document.getElementById('output') as HTMLTextAreaElement).value.length > n + 20, early);
    assert.match(await page.textContent('#status') ?? '', /generating… \d+ tokens, [\d.]+ tokens\/s/);
    await page.click('#stop');
    await page.waitForFunction(() => document.getElementById('status')!.textContent!.startsWith('stopped'));
    assert.equal(await page.isEnabled('#generate'), true);
    await waitFor('the server to cancel the stopped generation', async () => {
      const h = await (await fetch(`${server.url}/health`)).json();
      return !h.running && h.waiting === 0;
    }, 3000);

    await page.selectOption('#model', 'base');
    await setRange(page, 'temperature', 0);
    await setRange(page, 'max_new_tokens', 5);
    await page.uncheck('#stream');
    await page.click('#generate');
    await page.waitForFunction(() => /\(length|stop\)$/.test(document.getElementById('status')!.textContent!));
    assert.match(await page.textContent('#status') ?? '', /^\d+ tokens, [\d.]+ tokens\/s \((length|stop)\)$/);
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
    await server.stop();
  }
});

test('the page: no emoji, the API key asked for in its words, the queue position while waiting; a cross-origin call with --cors_origin', async (t) => {
  if (!needShared(t, 'fixtures', 'trainer', 'base', 'tokenizer.model')) return;
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: .ci/run installs it with apt-get install chromium`);
    return t.skip(`${CHROMIUM} is missing (apt-get install chromium)`);
  }
  for (const name of readdirSync(PUBLIC_DIR)) {
    const text = readFileSync(join(PUBLIC_DIR, name), 'utf8');
    const odd = [...text].filter((c) => /\p{Extended_Pictographic}|\uFE0F/u.test(c) || !/[\x09\x0A\x0D\x20-\x7E\u00A0-\u00FF\u2010-\u2027]/.test(c));
    assert.deepEqual(odd, [], `${name} holds characters that may need an emoji or symbol font`);
  }
  const base = sharedPath('fixtures', 'trainer', 'base');
  const server = await startServe(['--base_model', base, '--api_key', 'sesame', '--max_batch_size', '1']);
  t.after(() => server.stop());
  const other = await startServe(['--base_model', base, '--api_key', 'other', '--cors_origin', server.url]);
  t.after(() => other.stop());
  const profile = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
  const browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS, headless: true });
  t.after(async () => {
    await browser.close(); // before its profile goes: chromium writes there until it exits
    rmSync(profile, { recursive: true, force: true });
  });
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(server.url);
  await page.waitForFunction(() => (document.getElementById('model') as HTMLSelectElement).options.length === 1);
  assert.equal(await page.isVisible('#api_key'), true, 'the key box shows when the server needs a key');
  assert.doesNotMatch(await page.title() + await page.innerText('body'), /\p{Extended_Pictographic}/u);

  const status = async () => (await page.textContent('#status')) ?? '';
  await page.fill('#instruction', 'Tell me about alpacas.');
  await page.click('#generate');
  await page.waitForFunction(() => document.getElementById('status')!.classList.contains('error'));
  assert.equal(await status(), 'This server needs an API key. Enter it in the API key box, then press Generate.');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'api_key');
  await page.fill('#api_key', 'wrong');
  await page.click('#generate');
  await page.waitForFunction(() => document.getElementById('status')!.textContent!.includes('did not accept'));
  assert.equal(await status(), 'The server did not accept that API key. Check it, enter it again, then press Generate.');

  const busy = new AbortController();
  const running = await fetch(`${server.url}/v1/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sesame' }, signal: busy.signal,
    body: JSON.stringify({ prompt: 'Once', max_tokens: 240, ignore_eos: true, stream: true }),
  });
  await streamEvents(running).next(); // the one batch row is taken
  await page.fill('#api_key', 'sesame');
  await setRange(page, 'max_new_tokens', 5);
  await page.click('#generate');
  await page.waitForFunction(() => document.getElementById('status')!.textContent === 'waiting in the queue: position 1');
  busy.abort();
  await page.waitForFunction(() => /\(length|stop\)$/.test(document.getElementById('status')!.textContent!));
  assert.match(await status(), /^\d+ tokens, [\d.]+ tokens\/s \((length|stop)\)$/);

  const crossOrigin = await page.evaluate(async (url) => {
    const r = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer other' }, body: JSON.stringify({ prompt: 'Hi', max_tokens: 2 }) });
    return { status: r.status, object: (await r.json()).object };
  }, other.url);
  assert.deepEqual(crossOrigin, { status: 200, object: 'text_completion' }, 'a page from the allowed origin calls the API (with its preflight)');
  const elsewhere = await browser.newPage();
  await elsewhere.goto(other.url);
  const refused = await elsewhere.evaluate(async (url) => fetch(`${url}/health`).then(() => 'read', (e: Error) => e.name), server.url);
  assert.equal(refused, 'TypeError', 'without --cors_origin a page from another origin cannot read the answer');
  assert.deepEqual(pageErrors, []);
});
