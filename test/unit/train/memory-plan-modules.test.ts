// The planner's DoRA and modules_to_save terms (and their growth with --new_special_tokens), by hand on llama-mha (V 512, C 64, 2 layers, float32 base, cpu):
// modules_to_save adds a float32 gradient and two moments per (V, C) copy (the master is the float32 base itself);
// DoRA adds per target and layer a magnitude (param, grad, two moments) and two factors (4 + 2 floats per output
// row), plus each target's saved z (N, out) f32 per layer.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadLlamaConfig } from '../../../src/arch/llama-config.ts';
import { estimateWeightMemory } from '../../../src/model/inspect.ts';
import { planMemory, planRun } from '../../../src/train/memory-plan.ts';
import { fixtureDir } from '../../helpers/golden.ts';
import { needShared } from '../../helpers/shared.ts';

test('memory plan: modules_to_save and DoRA terms', (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const config = loadLlamaConfig(fixtureDir('llama-mha'));
  const weights = estimateWeightMemory(config, 'F32', null);
  const plan = (lora: { dora?: boolean; modulesToSave?: number }) => planMemory(config, weights, {
    backend: 'cpu', microBatchSize: 2, seqLen: 16, lora: { targets: ['q_proj', 'down_proj'], r: 4, ...lora }, checkpointing: false, activationDtype: 'f32',
  });
  const plain = plan({});
  assert.equal(plan({ modulesToSave: 2 }).trainable - plain.trainable, 2 * 512 * 64 * 4 * 3);
  const dora = plan({ dora: true });
  const rows = 64 + 64; // q_proj and down_proj each have 64 output features here
  assert.equal(dora.trainable - plain.trainable, config.numLayers * rows * 4 * (4 + 2));
  assert.equal(dora.activations - plain.activations, config.numLayers * 2 * 16 * rows * 4);
});

test('memory plan: --new_special_tokens grows the modules_to_save copies it prices', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha')) return;
  const request = {
    baseModel: fixtureDir('llama-mha'), backend: 'cpu' as const, microBatchSize: 2, cutoffLen: 16, loraR: 4, loraTargetModules: ['q_proj' as const],
    modulesToSave: ['embed_tokens', 'lm_head'], gradientCheckpointing: false, activationDtype: 'f32' as const, quantization: {},
  };
  const base = await planRun(request, () => {});
  const grown = await planRun({ ...request, vocabSize: 512 + 3 }, () => {});
  // two (V, C) copies, each with a float32 gradient and two moments: 3 more rows of 64 floats each
  assert.equal(grown.trainable - base.trainable, 2 * 3 * 64 * 4 * 3);
  assert.equal((await planRun({ ...request, vocabSize: 100 }, () => {})).trainable, base.trainable, 'a smaller tokenizer leaves the config\'s size');
});
