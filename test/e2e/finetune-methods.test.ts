// The training methods beyond LoRA, end to end on the built-in example's tiny model (js backend): full
// fine-tuning resumed from checkpoint-3 logs the uninterrupted run's losses and ends with the same weights; its
// output folder is a model folder that loads as a base and scores the reported eval loss; freeze trains exactly
// the chosen layers' modules (every other weight is the base's, bit for bit); a quantized base is refused.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import { EXAMPLE_DATA, writeExampleModel } from '../../src/example/run-example.ts';
import { openCheckpoint } from '../../src/formats/hf-checkpoint.ts';
import { UserError } from '../../src/errors.ts';
import { readCheckpoint } from '../../src/train/checkpoint/checkpoint.ts';
import { finetune, type FinetuneInput } from '../../src/train/finetune.ts';
import type { LogEntry } from '../../src/train/loop.ts';

const work = mkdtempSync(join(tmpdir(), 'finetune-methods-'));
const base = join(work, 'base');
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

const recipe = (outputDir: string, extra: Partial<FinetuneInput> = {}): FinetuneInput => ({
  baseModel: base, dataPath: EXAMPLE_DATA, outputDir, backend: new JsBackend(), batchSize: 4, microBatchSize: 2, maxSteps: 6,
  learningRate: 1e-3, warmupSteps: 2, weightDecay: 0.01, valSetSize: 8, evalSteps: 3, saveSteps: 3, loggingSteps: 1, cutoffLen: 64,
  trainOnInputs: false, loadBestModelAtEnd: false, finetuningType: 'full', progress: false, log: () => {},
  ...extra,
});

const withoutSpeed = (h: LogEntry[]) => h.map((e) => (e.kind === 'train' ? { ...e, tokens_per_second: 0, peak_memory_gib: 0 } : e));

async function weights(dir: string): Promise<Map<string, Float32Array | Uint16Array>> {
  const r = await openCheckpoint(dir);
  try {
    return new Map(r.names().map((n) => [n, r.read(n).data as Float32Array | Uint16Array]));
  } finally {
    r.close();
  }
}

const same = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.from(a).every((v, i) => Object.is(v, b[i]));

test('full fine-tuning: resumed from checkpoint-3 == uninterrupted; the output folder is a base model with the reported eval loss', async () => {
  await writeExampleModel(base, () => {});
  const whole = await finetune(recipe(join(work, 'whole')));
  const resumed = await finetune(recipe(join(work, 'resumed'), { resumeFromCheckpoint: join(work, 'whole', 'checkpoint-3') }));
  assert.equal(whole.steps, 6);
  assert.equal(whole.adapter, null);
  assert.deepEqual(withoutSpeed(resumed.history), withoutSpeed(whole.history));
  const a = await weights(join(work, 'whole')), b = await weights(join(work, 'resumed')), start = await weights(base);
  assert.equal(a.size, start.size);
  for (const [name, w] of a) {
    assert.ok(same(w, b.get(name)!), `${name}: the resumed run ends elsewhere`);
    assert.ok(!same(w, start.get(name)!), `${name} did not train`);
  }
  const ckpt = readCheckpoint(join(work, 'whole', 'checkpoint-3'));
  assert.equal((ckpt.state.recipe as Record<string, unknown>).finetuning_type, 'full');
  assert.equal(ckpt.optimizer.size, 2 * a.size, 'both AdamW moments of every weight');
  for (const f of ['config.json', 'model.safetensors']) assert.ok(existsSync(join(work, 'whole', 'checkpoint-3', f)), `checkpoint-3 lacks ${f}`);

  // The saved folder as --base_model: a LoRA run with a zero adapter (B = 0) evaluates the trained weights.
  const rescored = await finetune({ ...recipe(join(work, 'rescored')), baseModel: join(work, 'whole'), finetuningType: 'lora', maxSteps: 1, learningRate: 1e-9, warmupSteps: 1, saveSteps: 0 });
  const first = rescored.history.find((e) => e.kind === 'eval') as { eval_loss: number };
  assert.ok(Math.abs(first.eval_loss - whole.evalLoss!) < 1e-5, `the saved model scores ${first.eval_loss}, the run reported ${whole.evalLoss}`);

  await assert.rejects(finetune(recipe(join(work, 'lora-on-full'), { finetuningType: 'lora', resumeFromCheckpoint: join(work, 'whole', 'checkpoint-3') })), UserError);
});

test('freeze trains exactly the chosen modules of the last (or first) layers', async () => {
  if (!existsSync(join(base, 'config.json'))) await writeExampleModel(base, () => {});
  const start = await weights(base);
  const numLayers = [...start.keys()].filter((n) => /^model\.layers\.\d+\.input_layernorm\.weight$/.test(n)).length;
  for (const [layers, modules, trained] of [
    [1, ['mlp'], (n: string) => n.startsWith(`model.layers.${numLayers - 1}.mlp.`)],
    [-1, ['all'], (n: string) => n.startsWith('model.layers.0.')],
  ] as const) {
    const out = join(work, `freeze${layers}`);
    const r = await finetune(recipe(out, { finetuningType: 'freeze', freezeTrainableLayers: layers, freezeTrainableModules: [...modules], saveSteps: 0 }));
    assert.equal(r.steps, 6);
    const after = await weights(out);
    assert.ok([...start.keys()].some(trained));
    for (const [name, w] of start) {
      const changed = !same(w, after.get(name)!); // the example base is float32, as the trained weights are saved
      assert.equal(changed, trained(name), `${name}: ${changed ? 'changed' : 'unchanged'} under freeze ${layers} ${modules}`);
    }
  }
});

test('full and freeze refuse a quantized base in one line, before loading', async () => {
  for (const finetuningType of ['full', 'freeze'] as const) {
    await assert.rejects(finetune(recipe(join(work, 'q'), { finetuningType, quantization: { loadIn4bit: true } })),
      (e: Error) => e instanceof UserError && /--finetuning_type .* quantized base .*drop --load_in_4bit/.test(e.message) && !e.message.includes('\n'));
  }
});
