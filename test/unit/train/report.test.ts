// report.html: self-contained (inline script and styles, nothing loaded), the run's facts first, nice axis ticks,
// the loss chart's smoothing and log-scale variants, and the reload only while the run goes on.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LogEntry } from '../../../src/train/loop.ts';
import { logAxis, niceAxis, niceStep, smooth, tickLabel } from '../../../src/train/report-scale.ts';
import { renderReport } from '../../../src/train/report.ts';

const history: LogEntry[] = [
  { kind: 'eval', step: 0, epoch: 0, eval_loss: 5, eval_tokens: 100 },
  { kind: 'train', step: 10, epoch: 0.5, loss: 4.5, learning_rate: 1e-3, grad_norm: 0.8, tokens_per_second: 900 },
  { kind: 'train', step: 20, epoch: 1, loss: 4.1, learning_rate: 5e-4, grad_norm: 0.7, tokens_per_second: 950 },
  { kind: 'train', step: 30, epoch: 1.5, loss: 3.9, learning_rate: 2e-4, grad_norm: 0.7, tokens_per_second: 940 },
  { kind: 'eval', step: 20, epoch: 1, eval_loss: 4.3, eval_tokens: 100 },
];

test('nice ticks: 1, 2, 2.5 or 5 times a power of ten, the axis widened to them, no float noise', () => {
  assert.deepEqual([0.7, 1, 1.2, 2.2, 3, 7, 0.013].map(niceStep), [1, 1, 2, 2.5, 5, 10, 0.02]);
  assert.deepEqual(niceAxis(0.82, 2.9), { lo: 0, hi: 3, ticks: [0, 1, 2, 3] });
  assert.deepEqual(niceAxis(1.03, 1.97).ticks, [1, 1.25, 1.5, 1.75, 2]);
  assert.deepEqual(niceAxis(0.1, 0.7).ticks, [0, 0.2, 0.4, 0.6, 0.8]);
  assert.deepEqual(niceAxis(1e-5, 3e-4).ticks, [0, 1e-4, 2e-4, 3e-4]);
  assert.deepEqual(niceAxis(0, 168, 6, true).ticks, [0, 50, 100, 150, 200]);
  assert.deepEqual(niceAxis(0, 3, 6, true).ticks, [0, 1, 2, 3]);
  assert.deepEqual(niceAxis(2, 2).ticks.length > 1, true, 'a flat series still gets an axis');
  assert.deepEqual(logAxis(0.82, 2.9).ticks, [0.8, 0.9, 1, 2, 3]);
  assert.deepEqual(logAxis(0.05, 6).ticks, [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10]);
  assert.deepEqual([0, 0.5, 2500, 3e-4, 25000, 250000].map(tickLabel), ['0', '0.5', '2500', '3e-4', '25000', '2.5e+5']);
});

test('smoothing is TensorBoard\'s debiased moving average: a constant stays put, a step is followed', () => {
  assert.deepEqual(smooth([2, 2, 2]), [2, 2, 2]);
  const s = smooth([0, 0, 10, 10, 10, 10, 10, 10, 10, 10], 0.6);
  assert.equal(s[1], 0);
  assert.ok(s[2]! > 0 && s[2]! < 10 && s[9]! > 9.5);
});

test('the page: facts first, four charts, loss with both scales and a smoothed line, inline script, nothing from outside', () => {
  const html = renderReport({
    title: 'run <1>', status: 'running: step 30 of 40', running: true, totalSteps: 40, settings: { lora_r: 8 }, history,
    facts: { started: '2026-12-01 20:10 UTC', backend: 'js', 'peak memory': '0.20 GiB host (peak RSS)' },
  });
  assert.match(html, /^<!doctype html>/);
  assert.equal((html.match(/<svg /g) ?? []).length, 4);
  assert.equal((html.match(/<script>/g) ?? []).length, 1, 'one inline script');
  assert.ok(!/\b(src|href)=|https?:\/\/(?!www\.w3\.org)/.test(html), 'loads nothing');
  assert.match(html, /run &lt;1&gt;/);
  assert.ok(html.indexOf('2026-12-01 20:10 UTC') < html.indexOf('last train loss'), 'the facts come first');
  assert.match(html, /4\.3000 at step 20/);
  assert.match(html, /lora_r/);
  const loss = html.slice(html.indexOf('id="loss"'), html.indexOf('id="learning-rate"'));
  assert.match(loss, /data-toggle="smooth"/);
  assert.match(loss, /data-toggle="log"/);
  assert.match(loss, /class="scale-log"/);
  assert.match(loss, /class="smoothed"/);
  assert.match(loss, /<text [^>]*>4\.5<\/text>/, 'a nice tick between 3.5 and 5');
  assert.match(html, /data-reload="10"/);
  assert.match(renderReport({ title: 't', status: 'finished', totalSteps: 40, settings: {}, history }), /data-reload="0"/);
  assert.match(renderReport({ title: 't', status: 'running', running: true, totalSteps: 40, settings: {}, history: [] }), /no data yet/);
});
