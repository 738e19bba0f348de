// --modules_to_save embed_tokens,lm_head: the copies' gradients are the full fine-tuning path's for the same two
// tensors (llama-mha, no adapter: both run the same forward, so they must agree exactly); a run on the example
// model saves the trained copies under PEFT's keys with modules_to_save in adapter_config.json, changed from the
// base, resumes exactly, and export-hf merges them (its probe check against base + adapter passes).

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import { EXAMPLE_DATA } from '../../src/example/run-example.ts';
import { exportHf } from '../../src/export/export-hf.ts';
import { toFloat32 } from '../../src/formats/host-tensor.ts';
import { readPeftAdapter } from '../../src/formats/peft-adapter.ts';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { peftModuleKey } from '../../src/formats/weight-names.ts';
import { forwardBackward } from '../../src/model/compute.ts';
import { enableFullFinetune } from '../../src/model/full-finetune.ts';
import { loadModel } from '../../src/model/load.ts';
import { enableModulesToSave } from '../../src/model/modules-to-save.ts';
import { finetune, type FinetuneInput } from '../../src/train/finetune.ts';
import type { LogEntry } from '../../src/train/loop.ts';
import { fixtureDir, readGolden } from '../helpers/golden.ts';
import { needShared } from '../helpers/shared.ts';
import { writeUntiedExampleModel } from '../helpers/untied-example.ts';

const work = mkdtempSync(join(tmpdir(), 'modules-to-save-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

test('modules_to_save copies get the full fine-tuning gradients of embed_tokens and lm_head', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const g = readGolden('llama-mha');
  const full = await loadModel(new JsBackend(), fixtureDir('llama-mha'));
  const fullParams = enableFullFinetune(full);
  await forwardBackward(full, g.batch, null, 1 / 10);
  const copies = await loadModel(new JsBackend(), fixtureDir('llama-mha'));
  const params = enableModulesToSave(copies, ['embed_tokens', 'lm_head']);
  assert.deepEqual(params.map((p) => p.name), ['base_model.model.model.embed_tokens.weight', 'base_model.model.lm_head.weight']);
  await forwardBackward(copies, g.batch, null, 1 / 10);
  for (const [i, name] of ['model.embed_tokens.weight', 'lm_head.weight'].entries()) {
    const expected = (await full.be.download(fullParams.find((p) => p.name === name)!.grad)) as Float32Array;
    const actual = (await copies.be.download(params[i]!.grad)) as Float32Array;
    assert.ok(expected.some((v) => v !== 0), `${name}: a zero gradient proves nothing`);
    assert.deepEqual(actual, expected, name);
  }
});

const recipe = (outputDir: string, extra: Partial<FinetuneInput> = {}): FinetuneInput => ({
  baseModel: join(work, 'base'), dataPath: EXAMPLE_DATA, outputDir, backend: new JsBackend(), batchSize: 4, microBatchSize: 2, maxSteps: 4,
  learningRate: 1e-2, warmupSteps: 1, valSetSize: 8, evalSteps: 2, saveSteps: 2, loggingSteps: 1, loraDropout: 0.1,
  loraTargetModules: ['q_proj', 'v_proj'], cutoffLen: 64, trainOnInputs: false, progress: false, log: () => {},
  modulesToSave: ['embed_tokens', 'lm_head'], ...extra,
});

const withoutSpeed = (h: LogEntry[]) => h.map((e) => (e.kind === 'train' ? { ...e, tokens_per_second: 0, peak_memory_gib: 0 } : e));

test('finetune --modules_to_save saves PEFT\'s keys, resumes exactly, and export-hf merges the copies', async () => {
  const base = join(work, 'base');
  await writeUntiedExampleModel(base);
  const whole = await finetune(recipe(join(work, 'whole')));
  const adapter = readPeftAdapter(join(work, 'whole'));
  assert.deepEqual(adapter.config.modulesToSave, ['embed_tokens', 'lm_head']);
  assert.deepEqual(JSON.parse(readFileSync(join(work, 'whole', 'adapter_config.json'), 'utf8')).modules_to_save, ['embed_tokens', 'lm_head']);
  const baseWeights = readSafetensors(join(base, 'model.safetensors'));
  for (const [module, hf] of [['embed_tokens', 'model.embed_tokens.weight'], ['lm_head', 'lm_head.weight']] as const) {
    const copy = toFloat32(adapter.tensors.get(peftModuleKey(module))!);
    const original = toFloat32(baseWeights.get(hf)!);
    assert.equal(copy.length, original.length);
    assert.ok(copy.some((v, i) => v !== original[i]), `${module} did not train`);
  }
  const resumed = await finetune(recipe(join(work, 'resumed'), { resumeFromCheckpoint: join(work, 'whole', 'checkpoint-2') }));
  assert.deepEqual(withoutSpeed(resumed.history), withoutSpeed(whole.history));
  const bytes = (dir: string) => readFileSync(join(dir, 'adapter_model.safetensors'));
  assert.ok(bytes(join(work, 'whole')).equals(bytes(join(work, 'resumed'))), 'the final adapters differ');
  const merged = await exportHf({ baseModel: base, loraWeights: join(work, 'whole'), outputDir: join(work, 'merged'), backend: new JsBackend() });
  assert.ok(merged.logits!.maxDiff <= 1e-5 * merged.logits!.scale, `probe logits differ by ${merged.logits!.maxDiff}`);
});
