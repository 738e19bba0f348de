// finetune --use_dora on the built-in example model (js backend, dropout on): the output is a PEFT DoRA adapter
// (use_dora, a lora_magnitude_vector per target, PEFT's key form) whose magnitudes started at ||W|| per row (PEFT's
// init, B = 0) and moved; resuming from a checkpoint gives the uninterrupted run's losses and adapter bytes; a LoRA
// checkpoint does not resume a DoRA run.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import { EXAMPLE_DATA, writeExampleModel } from '../../src/example/run-example.ts';
import { toFloat32 } from '../../src/formats/host-tensor.ts';
import { readPeftAdapter } from '../../src/formats/peft-adapter.ts';
import { peftMagnitudeKey } from '../../src/formats/weight-names.ts';
import { loadModel } from '../../src/model/load.ts';
import { finetune, type FinetuneInput } from '../../src/train/finetune.ts';
import type { LogEntry } from '../../src/train/loop.ts';

const work = mkdtempSync(join(tmpdir(), 'finetune-dora-'));
const base = join(work, 'base');
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

const recipe = (outputDir: string, extra: Partial<FinetuneInput> = {}): FinetuneInput => ({
  baseModel: base, dataPath: EXAMPLE_DATA, outputDir, backend: new JsBackend(), batchSize: 4, microBatchSize: 2, maxSteps: 4,
  learningRate: 1e-2, warmupSteps: 1, valSetSize: 8, evalSteps: 2, saveSteps: 2, loggingSteps: 1, loraDropout: 0.1,
  loraTargetModules: ['q_proj', 'v_proj', 'down_proj'], cutoffLen: 64, trainOnInputs: false, progress: false, log: () => {},
  useDora: true, ...extra,
});

const withoutSpeed = (h: LogEntry[]) => h.map((e) => (e.kind === 'train' ? { ...e, tokens_per_second: 0, peak_memory_gib: 0 } : e));

test('finetune --use_dora writes a PEFT DoRA adapter, trains the magnitudes, and resumes exactly', async () => {
  await writeExampleModel(base, () => {});
  const whole = await finetune(recipe(join(work, 'whole')));
  assert.equal(whole.steps, 4);
  const adapter = readPeftAdapter(join(work, 'whole'));
  assert.equal(adapter.config.useDora, true);
  assert.equal(JSON.parse(readFileSync(join(work, 'whole', 'adapter_config.json'), 'utf8')).use_dora, true);
  const m = await loadModel(new JsBackend(), base);
  const L = m.config.numLayers;
  assert.equal(adapter.tensors.size, 3 * 3 * L);
  for (let l = 0; l < L; l++) {
    for (const p of ['q_proj', 'v_proj', 'down_proj'] as const) {
      const key = peftMagnitudeKey(l, p);
      const magnitude = toFloat32(adapter.tensors.get(key)!);
      const w = (await m.be.download(m.weights.layers[l]!.proj[p].weight)) as Float32Array;
      const C = w.length / magnitude.length;
      let moved = 0;
      magnitude.forEach((v, o) => {
        const norm = Math.hypot(...w.subarray(o * C, (o + 1) * C));
        assert.ok(Math.abs(v - norm) < 0.2 * norm, `${key}[${o}] = ${v}, far from its initial ||W|| = ${norm}`);
        if (Math.abs(v - norm) > 1e-6 * norm) moved++;
      });
      assert.ok(moved > magnitude.length / 2, `${key}: only ${moved} of ${magnitude.length} magnitudes trained`);
    }
  }

  const resumed = await finetune(recipe(join(work, 'resumed'), { resumeFromCheckpoint: join(work, 'whole', 'checkpoint-2') }));
  assert.deepEqual(withoutSpeed(resumed.history), withoutSpeed(whole.history));
  const bytes = (dir: string) => readFileSync(join(dir, 'adapter_model.safetensors'));
  assert.ok(bytes(join(work, 'whole')).equals(bytes(join(work, 'resumed'))), 'the final adapters differ');

  await assert.rejects(
    finetune(recipe(join(work, 'plain'), { useDora: false, resumeFromCheckpoint: join(work, 'whole', 'checkpoint-2') })),
    /use_dora|DoRA/,
  );
});
