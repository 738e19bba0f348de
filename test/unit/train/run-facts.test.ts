// The facts report.html opens with: in order, with the date in UTC, the speed from tokens and step time, and peak memory.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsBackend } from '../../../src/backends/js/index.ts';
import type { Backend } from '../../../src/engine/backend.ts';
import { boundingPeakGib, peakMemory, runFacts } from '../../../src/train/run-facts.ts';

test('the run\'s facts: started, duration, backend, model, data, tokens seen, average tokens/s, peak memory', () => {
  const facts = runFacts({ startedAt: new Date('2026-12-01T20:10:42Z'), seconds: 372, be: new JsBackend(), model: './tiny', data: '80 examples', tokens: 123456, trainSeconds: 100 });
  assert.deepEqual(Object.keys(facts), ['started', 'duration', 'backend', 'model', 'data', 'tokens seen', 'average tokens/s', 'peak memory']);
  assert.deepEqual(Object.values(facts).slice(0, 7), ['2026-12-01 20:10 UTC', '6m12s', 'js', './tiny', '80 examples', '123,456', '1,235']);
  assert.match(facts['peak memory']!, /^\d+\.\d\d GiB host \(peak RSS\)$/);
  const cuda = { name: 'cuda', describe: () => 'H200, bf16 precision', memory: () => ({ peak: 3 * 1024 ** 3 }) } as unknown as Backend;
  assert.match(peakMemory(cuda), /^3\.00 GiB GPU, \d+\.\d\d GiB host/);
  assert.equal(boundingPeakGib(cuda), 3, 'metrics.jsonl logs the device peak on cuda');
  assert.ok(boundingPeakGib(new JsBackend()) > 0, 'and the process peak RSS elsewhere');
  assert.equal(runFacts({ startedAt: new Date(), seconds: 0, be: cuda, model: 'm', data: 'd', tokens: 0, trainSeconds: 0 })['average tokens/s'], '–');
});
