// The live progress line fits the terminal's width at any width; log lines carry elapsed time and ETA.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatLog, Progress } from '../../../src/train/progress.ts';
import type { StepResult } from '../../../src/train/trainer.ts';

const stepResult = (step: number): StepResult => ({
  step, epoch: step / 100, loss: 1.23456, gradNorm: 0.5, learningRate: 3e-4, targetTokens: 400, inputTokens: 512, seconds: 0.5,
});

/** The live lines a Progress of 1680 steps draws at `columns`, without their erase codes. */
function liveLines(columns: number | undefined): string[] {
  const lines: string[] = [];
  const p = new Progress(1680, true, (t) => lines.push(t.replace('\r\x1b[2K', '')), () => {}, () => columns);
  for (const s of [1, 840, 1680]) p.step(stepResult(s));
  return lines;
}

test('the live line never reaches the last column, from 20 to 200 columns; narrow terminals drop lr, then tok/s, then the bar', () => {
  for (let columns = 20; columns <= 200; columns++) {
    for (const line of liveLines(columns)) assert.ok(line.length < Math.max(columns, 21), `${columns} columns: ${line.length} characters: ${line}`);
  }
  const wide = liveLines(200)[1]!;
  assert.match(wide, /^ 840\/1680 \[█{10}░{10}\] 50% \| loss 1\.2346 \| lr 3\.00e-4 \| 1024 tok\/s \| ETA 7m00s$/);
  assert.match(liveLines(80)[1]!, /\] 50% \| loss 1\.2346 \| lr 3\.00e-4 \| 1024 tok\/s \| ETA/);
  assert.match(liveLines(70)[1]!, /^ 840\/1680 \[█+░+\] 50% \| loss 1\.2346 \| 1024 tok\/s \| ETA 7m00s$/);
  assert.match(liveLines(60)[1]!, /^ 840\/1680 \[█+░+\] 50% \| loss 1\.2346 \| ETA 7m00s$/);
  assert.equal(liveLines(40)[1], ' 840/1680 50% | loss 1.2346 | ETA 7m00s');
  assert.ok(liveLines(undefined)[1]!.length < 80, 'no terminal width known: 80 columns');
});

test('log lines end with the elapsed wall time and the ETA at the mean step time', () => {
  let now = 0;
  const printed: string[] = [];
  const p = new Progress(100, false, () => assert.fail('no live line when not a terminal'), (l) => printed.push(l), () => 80, () => now);
  assert.equal(p.timing(), 'elapsed 0s | ETA ?');
  for (let s = 1; s <= 10; s++) {
    now += 2000;
    p.step({ ...stepResult(s), seconds: 2 });
  }
  p.log(formatLog({ kind: 'train', step: 10, epoch: 0.1, loss: 2, learning_rate: 1e-4, grad_norm: 1, tokens_per_second: 256 } as never, 100, p.timing()));
  assert.deepEqual(printed, ['step 10/100 | epoch 0.10 | loss 2.0000 | lr 1.000e-4 | grad_norm 1.0000 | 256 tok/s | elapsed 20s | ETA 3m00s']);
});
