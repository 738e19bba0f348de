// The generation page in a real browser: Debian's chromium (headless, fresh profile) driven by playwright-core
// against `alpaca-lora serve` on the trainer fixture. Type an instruction, generate with streaming, see the
// text grow, stop it (the server frees its slot), then a short non-streamed generation with its tokens/s.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type Page } from 'playwright-core';
import { needShared, sharedPath } from '../helpers/shared.ts';
import { startServe, waitFor } from './serve-helper.ts';

const CHROMIUM = '/usr/bin/chromium';
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
