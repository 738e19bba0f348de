// report.html: self-contained (no scripts, no network), with the loss, learning-rate and speed charts.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderReport } from '../../../src/train/report.ts';
import type { LogEntry } from '../../../src/train/loop.ts';

test('the report charts train and eval loss and loads nothing from outside', () => {
  const history: LogEntry[] = [
    { kind: 'eval', step: 0, epoch: 0, eval_loss: 5, eval_tokens: 100 },
    { kind: 'train', step: 10, epoch: 0.5, loss: 4.5, learning_rate: 1e-3, grad_norm: 0.8, tokens_per_second: 900 },
    { kind: 'train', step: 20, epoch: 1, loss: 4.1, learning_rate: 5e-4, grad_norm: 0.7, tokens_per_second: 950 },
    { kind: 'eval', step: 20, epoch: 1, eval_loss: 4.3, eval_tokens: 100 },
  ];
  const html = renderReport({ title: 'run <1>', status: 'finished', totalSteps: 20, settings: { lora_r: 8 }, history });
  assert.match(html, /^<!doctype html>/);
  assert.equal((html.match(/<svg /g) ?? []).length, 4);
  assert.ok(!/<script|https?:\/\//.test(html.replace('http://www.w3.org', '')));
  assert.match(html, /run &lt;1&gt;/);
  assert.match(html, /4\.3000 at step 20/);
  assert.match(html, /lora_r/);
});
