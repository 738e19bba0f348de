// report.html in a real browser: Debian's chromium (headless, fresh profile) driven by playwright-core, as the
// generation page's test does. At a wide viewport the charts sit side by side; hovering the loss chart shows the
// values at that step; the smoothing and log-scale toggles switch the lines and survive a reload; a running
// report reloads itself into the finished one, which stops reloading; nothing is fetched from outside the file.
// REPORT_SCREENSHOT_DIR=dir keeps screenshots to look at.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import type { LogEntry } from '../../src/train/loop.ts';
import { renderReport, type ReportInput } from '../../src/train/report.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A run of 168 steps logged every 2 (a noisy falling loss, warmup then linear decay) with an evaluation every 24. */
function history(upTo: number): LogEntry[] {
  const out: LogEntry[] = [{ kind: 'eval', step: 0, epoch: 0, eval_loss: 2.9, eval_tokens: 4000 }];
  for (let step = 2; step <= upTo; step += 2) {
    const loss = 0.9 + 2 * Math.exp(-step / 40) + 0.18 * Math.sin(step * 1.7) * Math.cos(step * 0.31);
    const lr = step <= 20 ? (3e-4 * step) / 20 : (3e-4 * (168 - step)) / 148;
    out.push({ kind: 'train', step, epoch: step / 56, loss, learning_rate: lr, grad_norm: 0.6 + 0.3 * Math.abs(Math.sin(step)), tokens_per_second: 2400 + 60 * Math.sin(step / 5) });
    if (step % 24 === 0) out.push({ kind: 'eval', step, epoch: step / 56, eval_loss: 0.95 + 1.9 * Math.exp(-step / 45), eval_tokens: 4000 });
  }
  return out;
}

function report(running: boolean, upTo: number): ReportInput {
  return {
    title: 'finetune ./tiny-english on ./alpaca_data_cleaned.json', status: running ? `running: step ${upTo} of 168` : 'finished', running, totalSteps: 168,
    facts: { started: '2026-12-01 20:10 UTC', duration: '6m12s', backend: 'cpu (AVX-512, 16 threads)', model: './tiny-english', data: '2,000 examples (310,112 tokens); validation: 200 split off',
      'tokens seen': '930,336', 'average tokens/s': '2,452', 'peak memory': '1.21 GiB host (peak RSS)' },
    settings: { lora_r: 8, lora_alpha: 16, learning_rate: 3e-4 }, history: history(upTo),
  };
}

test('report.html: charts side by side, hover values, smoothing and log toggles, reloads while running, offline', async (t) => {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: .ci/run installs it with apt-get install chromium`);
    return t.skip(`${CHROMIUM} is missing (apt-get install chromium)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'report-page-'));
  const shots = process.env.REPORT_SCREENSHOT_DIR ?? dir;
  const file = join(dir, 'report.html');
  writeFileSync(file, renderReport(report(true, 120)));
  const profile = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
  const browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS, headless: true, viewport: { width: 1600, height: 1000 } });
  try {
    const page = await browser.newPage();
    const errors: string[] = [], outside: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => { if (!r.url().startsWith('file://')) outside.push(r.url()); });
    await page.goto(`file://${file}`);

    const boxes = await page.$$eval('figure.chart', (els) => els.map((el) => el.getBoundingClientRect().toJSON() as DOMRect));
    assert.equal(boxes.length, 4);
    assert.equal(Math.round(boxes[0]!.top), Math.round(boxes[1]!.top), 'loss and learning rate side by side');
    assert.ok(boxes[1]!.left > boxes[0]!.right, 'the second chart right of the first');
    for (const b of boxes) assert.ok(b.right <= 1600 && b.width > 500, `a chart fits the page width: ${JSON.stringify(b)}`);
    assert.ok(await page.$$eval('#loss svg text', (els) => els.some((e) => e.textContent === '0.5' || e.textContent === '1')), 'nice y ticks on the loss chart');
    await page.screenshot({ path: join(shots, 'report-wide.png'), fullPage: true });

    const svg = (await page.$('#loss svg'))!;
    const box = (await svg.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.55, box.y + box.height * 0.5);
    await page.waitForSelector('#loss .tip:not([hidden])');
    assert.match(await page.textContent('#loss .tip') ?? '', /^step \d+train \d\.\d+/);
    await page.screenshot({ path: join(shots, 'report-hover.png'), clip: { x: box.x - 10, y: box.y - 40, width: box.width + 20, height: box.height + 50 } });

    const shown = (selector: string) => page.$eval(selector, (el) => getComputedStyle(el).display !== 'none');
    assert.equal(await shown('#loss .scale-linear .smoothed'), false, 'no smoothed line before the toggle');
    await page.check('#loss input[data-toggle="smooth"]');
    assert.equal(await shown('#loss .scale-linear .smoothed'), true);
    assert.equal(await shown('#loss .scale-log'), false);
    await page.check('#loss input[data-toggle="log"]');
    assert.equal(await page.getAttribute('#loss', 'data-scale'), 'log');
    assert.equal(await shown('#loss .scale-log'), true);
    assert.equal(await shown('#loss .scale-linear'), false);
    await page.mouse.move(box.x + box.width * 0.55, box.y + box.height * 0.5);
    assert.match(await page.textContent('#loss .tip') ?? '', /smoothed \d\.\d+/);
    await page.screenshot({ path: join(shots, 'report-toggles.png'), clip: { x: box.x - 10, y: box.y - 40, width: box.width + 20, height: box.height + 50 } });

    // The running report reloads itself (toggles kept in the #fragment) into the finished one, which stays.
    assert.equal(await page.getAttribute('body', 'data-reload'), '10');
    writeFileSync(file, renderReport(report(false, 168)));
    await page.waitForFunction(() => document.querySelector('.status')!.textContent === 'finished', undefined, { timeout: 20_000 });
    assert.equal(await page.getAttribute('body', 'data-reload'), '0');
    assert.equal(await page.isChecked('#loss input[data-toggle="log"]'), true, 'the toggles survive the reload');
    const loaded = await page.evaluate(() => performance.timeOrigin);
    await page.waitForTimeout(11_000);
    assert.equal(await page.evaluate(() => performance.timeOrigin), loaded, 'a finished report does not reload');

    await page.setViewportSize({ width: 700, height: 1000 });
    const narrow = await page.$$eval('figure.chart', (els) => els.map((el) => el.getBoundingClientRect().toJSON() as DOMRect));
    assert.ok(narrow.every((b) => b.right <= 700), 'one column on a narrow page, nothing wider than it');
    assert.deepEqual(errors, []);
    assert.deepEqual(outside, [], 'the page loads nothing from outside');
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});
