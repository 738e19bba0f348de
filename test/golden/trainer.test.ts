// The reference Trainer reproduced: transformers.Trainer ran alpaca-lora's recipe for 6 optimizer steps
// (../shared/fixtures/trainer). We run `finetune` from the same initial adapter on the same pre-tokenized
// rows in file order and compare every logged step and the final adapter, on every backend built here.
// Tolerances: loss, grad_norm within 1e-4 absolute (float32 summation order differs); learning rate exact;
// final A and B within 1e-4 of each tensor's largest magnitude. Element-wise relative error is not used:
// Adam divides by sqrt(v), so near-zero gradient entries turn float32 rounding into ~1e-3 relative noise.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Backend } from '../../src/engine/backend.ts';
import { writeTokenizedJsonl } from '../../src/data/tokenized-jsonl.ts';
import { readPeftAdapter } from '../../src/formats/peft-adapter.ts';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { finetune } from '../../src/train/finetune.ts';
import type { TrainLog } from '../../src/train/loop.ts';
import { testBackends } from '../helpers/backends.ts';
import { needShared, sharedPath } from '../helpers/shared.ts';

for (const backend of testBackends()) {
  test(`finetune reproduces transformers.Trainer on alpaca-lora's recipe (6 steps, accumulation 2, warmup 2) on ${backend.name}`, async (t) => {
    if (needShared(t, 'fixtures', 'trainer', 'trainer_golden.json')) await reproduceTrainer(t, backend.make());
  });
}

async function reproduceTrainer(t: TestContext, backend: Backend): Promise<void> {
  const dir = sharedPath('fixtures', 'trainer');
  const golden = JSON.parse(readFileSync(join(dir, 'trainer_golden.json'), 'utf8'));
  const recipe = golden.recipe;
  const work = mkdtempSync(join(tmpdir(), 'trainer-golden-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const rows = join(work, 'rows.jsonl');
  await writeTokenizedJsonl(rows, golden.rows);

  const out = join(work, 'out');
  const result = await finetune({
    baseModel: join(dir, 'base'), dataPath: rows, outputDir: out, backend,
    resumeFromCheckpoint: join(dir, 'initial_adapter'), shuffle: false, valSetSize: 0,
    batchSize: recipe.batch_size, microBatchSize: recipe.micro_batch_size, numEpochs: recipe.num_epochs,
    learningRate: recipe.learning_rate, warmupSteps: recipe.warmup_steps, maxGradNorm: recipe.max_grad_norm,
    loraR: recipe.lora.r, loraAlpha: recipe.lora.alpha, loraDropout: recipe.lora.dropout, loraTargetModules: recipe.lora.targets,
    cutoffLen: recipe.cutoff_len, trainOnInputs: recipe.train_on_inputs, loggingSteps: 1, saveSteps: 0, progress: false, log: () => {},
  });

  const logs = result.history.filter((e): e is TrainLog => e.kind === 'train');
  assert.equal(logs.length, golden.steps.length);
  const worst = { loss: 0, grad_norm: 0, learning_rate: 0 };
  golden.steps.forEach((g: { step: number; loss: number; grad_norm: number; learning_rate: number; epoch: number }, i: number) => {
    const ours = logs[i]!;
    assert.equal(ours.step, g.step);
    assert.ok(Math.abs(ours.epoch - g.epoch) < 1e-12, `step ${g.step}: epoch ${ours.epoch} vs ${g.epoch}`);
    for (const key of ['loss', 'grad_norm', 'learning_rate'] as const) {
      const d = Math.abs(ours[key] - g[key]);
      worst[key] = Math.max(worst[key], d);
      assert.ok(d <= (key === 'learning_rate' ? 1e-15 : 1e-4), `step ${g.step} ${key}: ${ours[key]} vs ${g[key]}`);
    }
  });
  const metricsLines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(metricsLines.map((e) => e.loss), logs.map((e) => e.loss));
  assert.ok(metricsLines.every((e) => e.kind !== 'train' || e.peak_memory_gib > 0), 'every log line carries the measured peak memory');

  const expected = readSafetensors(join(dir, 'final_adapter.safetensors'));
  const saved = readPeftAdapter(out).tensors;
  assert.equal(saved.size, expected.size);
  let worstAdapter = 0;
  for (const [key, ref] of expected) {
    const ours = saved.get(key);
    assert.ok(ours, `the saved adapter lacks ${key}`);
    const a = ours.data as Float32Array, b = ref.data as Float32Array;
    let scale = 0, diff = 0;
    for (let i = 0; i < b.length; i++) {
      scale = Math.max(scale, Math.abs(b[i]!));
      diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    }
    worstAdapter = Math.max(worstAdapter, diff / scale);
    assert.ok(diff <= 1e-4 * scale, `${key}: max difference ${diff} against a largest magnitude of ${scale}`);
  }
  t.diagnostic(`max |difference| over 6 steps: loss ${worst.loss.toExponential(2)}, grad_norm ${worst.grad_norm.toExponential(2)}, ` +
    `learning_rate ${worst.learning_rate}; final adapter ${worstAdapter.toExponential(2)} of each tensor's largest magnitude`);
}
