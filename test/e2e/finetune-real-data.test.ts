// End to end on real Alpaca records (../shared/data) and a tiny LLaMA with the LLaMA-2 tokenizer
// (../shared/fixtures/trainer/base): a dozen steps lower the eval loss, the saved adapter reloads and
// reproduces the trained adapter's logits, and `alpaca-lora score` with it agrees with the last eval.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import { batchLogits } from '../../src/model/compute.ts';
import { loadLoraAdapter } from '../../src/model/lora-io.ts';
import { loadTokenizer } from '../../src/tokenizer/load.ts';
import { finetune, type FinetuneInput } from '../../src/train/finetune.ts';
import { FINETUNE_DEFAULTS } from '../../src/train/finetune-options.ts';
import type { EvalLog } from '../../src/train/loop.ts';
import { prepareData } from '../../src/train/prepare-data.ts';
import { collateExamples } from '../../src/train/trainer.ts';
import { needShared, PROJECT_ROOT, sharedPath } from '../helpers/shared.ts';

test('a dozen steps on real Alpaca data: eval loss falls, the adapter reloads, score agrees', async (t) => {
  if (!needShared(t, 'fixtures', 'trainer', 'base') || !needShared(t, 'data', 'alpaca_data_first335.json')) return;
  const out = mkdtempSync(join(tmpdir(), 'finetune-real-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const options: FinetuneInput = {
    baseModel: sharedPath('fixtures', 'trainer', 'base'), dataPath: sharedPath('data', 'alpaca_data_first335.json'),
    dataset: { skipEmptyOutputs: true }, outputDir: out, backend: new JsBackend(), valSetSize: 8, batchSize: 4, microBatchSize: 4,
    maxSteps: 12, learningRate: 1e-2, warmupSteps: 2, cutoffLen: 48, evalSteps: 6, saveSteps: 6, loggingSteps: 3,
    loraTargetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    loadBestModelAtEnd: false, progress: false, log: () => {},
  };
  const result = await finetune(options);

  const evals = result.history.filter((e): e is EvalLog => e.kind === 'eval');
  assert.deepEqual(evals.map((e) => e.step), [0, 6, 12]);
  assert.ok(evals[1]!.eval_loss < evals[0]!.eval_loss && evals[2]!.eval_loss < evals[1]!.eval_loss, JSON.stringify(evals));
  assert.equal(result.evalLoss, evals[2]!.eval_loss);

  const { model, adapter, tokenizer } = result;
  const reloaded = loadLoraAdapter(model.be, model.config, out);
  const data = await prepareData(loadTokenizer(options.baseModel), { ...FINETUNE_DEFAULTS, ...options });
  const batch = collateExamples(data.val, 0);
  const expected = await batchLogits(model, batch, { adapter: adapter!, dropout: 0, seed: 0 }); // a LoRA run's result holds its adapter
  const actual = await batchLogits(model, batch, { adapter: reloaded, dropout: 0, seed: 0 });
  const mask = batch.attentionMask!;
  const V = model.config.vocabSize;
  for (let i = 0; i < expected.length; i++) if (mask[Math.floor(i / V)] === 1) assert.equal(actual[i], expected[i]);
  assert.ok(tokenizer.vocabSize === V);

  const batchFile = join(out, 'val-batch.json');
  const rows = (a: Int32Array) => Array.from({ length: batch.B }, (_, b) => Array.from(a.subarray(b * batch.T, (b + 1) * batch.T)));
  writeFileSync(batchFile, JSON.stringify({ input_ids: rows(batch.inputIds), attention_mask: rows(mask), labels: rows(batch.labels!) }));
  const score = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'alpaca-lora.js'), 'score', '--base_model', options.baseModel,
    '--lora_weights', out, '--batch', batchFile, '--backend', 'js'], { encoding: 'utf8' });
  assert.equal(score.status, 0, score.stderr);
  const scored = JSON.parse(score.stdout.trim().split('\n').at(-1)!);
  assert.equal(scored.tokens, evals[2]!.eval_tokens);
  assert.ok(Math.abs(scored.loss - evals[2]!.eval_loss) < 1e-5, `score ${scored.loss} vs last eval ${evals[2]!.eval_loss}`);
});

