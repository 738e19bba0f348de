// The linear warmup + linear decay schedule against transformers' get_linear_schedule_with_warmup.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { learningRate } from '../../../src/train/schedule.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';

test('linear schedule matches lr_schedule_golden.json at all 388 steps', (t) => {
  if (!needShared(t, 'fixtures', 'lr_schedule_golden.json')) return;
  const golden = JSON.parse(readFileSync(sharedPath('fixtures', 'lr_schedule_golden.json'), 'utf8'));
  const s = { baseLr: golden.base_lr, warmupSteps: golden.warmup, totalSteps: golden.total, kind: 'linear' as const };
  assert.equal(golden.lr_at_step.length, 388);
  golden.lr_at_step.forEach((expected: number, step: number) => {
    assert.ok(Math.abs(learningRate(s, step) - expected) <= 1e-12 + 1e-9 * expected, `step ${step}: ${learningRate(s, step)} vs ${expected}`);
  });
});

test('cosine and constant schedules', () => {
  const base = { baseLr: 1, warmupSteps: 2, totalSteps: 12 };
  assert.equal(learningRate({ ...base, kind: 'cosine' }, 1), 0.5);
  assert.equal(learningRate({ ...base, kind: 'cosine' }, 2), 1);
  assert.ok(Math.abs(learningRate({ ...base, kind: 'cosine' }, 7) - 0.5) < 1e-12);
  assert.equal(learningRate({ ...base, kind: 'constant' }, 11), 1);
});
