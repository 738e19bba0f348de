// The pieces of the training methods that are plain rules: LoRA+ parameter groups as PEFT's
// create_loraplus_optimizer forms them and AdamW stepping each group at its own rate and decay (expected
// values by hand from torch.optim.AdamW's update); freeze's layer choice as LLaMA-Factory's _setup_freeze_tuning
// computes it; all-linear / all as LoRA targets.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsBackend } from '../../../src/backends/js/index.ts';
import { UserError } from '../../../src/errors.ts';
import { parseTargets } from '../../../src/model/lora-io.ts';
import { PROJECTIONS } from '../../../src/model/lora.ts';
import { checkFreezeModules, freezeSelection, trainableLayerIds } from '../../../src/train/methods/freeze-selection.ts';
import { loraPlusGroups } from '../../../src/train/methods/loraplus.ts';
import { AdamW } from '../../../src/train/optimizer.ts';

test('LoRA+ groups: lora_B and 1-D tensors at ratio x lr; biases and norms undecayed; lora_A and matrices as they were', () => {
  const be = new JsBackend();
  const t = (shape: number[]) => be.alloc(shape, 'f32', 'weights');
  const params = [
    { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', param: t([2, 4]), grad: t([2, 4]) },
    { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', param: t([4, 2]), grad: t([4, 2]) },
    { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector', param: t([4]), grad: t([4]) },
    { name: 'base_model.model.model.layers.0.self_attn.q_proj.bias', param: t([4]), grad: t([4]) },
    { name: 'base_model.model.model.norm.weight', param: t([4]), grad: t([4]) },
    { name: 'base_model.model.lm_head.modules_to_save.default.weight', param: t([8, 4]), grad: t([8, 4]) },
  ];
  const groups = loraPlusGroups(params, 16).map((p) => [p.lrScale ?? 1, p.weightDecay ?? true]);
  assert.deepEqual(groups, [[1, true], [16, true], [16, true], [16, false], [16, false], [1, true]]);
});

test('AdamW steps each tensor at its own rate and decay (torch.optim.AdamW, one step, by hand)', async () => {
  const be = new JsBackend();
  const make = (values: number[]) => {
    const x = be.alloc([values.length], 'f32', 'weights');
    be.upload(x, Float32Array.from(values));
    return x;
  };
  const w0 = [0.5, -1, 2], g = [0.1, -0.2, 0.3];
  const params = [
    { name: 'a', param: make(w0), grad: make(g) },
    { name: 'b', param: make(w0), grad: make(g), lrScale: 4, weightDecay: false },
  ];
  const lr = 1e-2, wd = 0.1, eps = 1e-8;
  new AdamW(be, params, { beta1: 0.9, beta2: 0.999, eps, weightDecay: wd }).update(lr);
  // step 1: m^ = g, v^ = g^2, so the Adam term is g / (|g| + eps); decoupled decay multiplies by 1 - lr * wd first
  const expect = (rate: number, decay: number) => w0.map((w, i) => w * (1 - rate * decay) - rate * g[i]! / (Math.abs(g[i]!) + eps));
  for (const [p, want] of [[params[0]!, expect(lr, wd)], [params[1]!, expect(4 * lr, 0)]] as const) {
    const got = await be.download(p.param);
    want.forEach((v, i) => assert.ok(Math.abs(got[i]! - v) < 1e-6, `${p.name}[${i}]: ${got[i]} vs ${v}`));
  }
});

test('freeze: the last N layers, or the first |N|, clamped; modules by LLaMA-Factory name', () => {
  assert.deepEqual(trainableLayerIds(6, 2), [4, 5]);
  assert.deepEqual(trainableLayerIds(6, -2), [0, 1]);
  assert.deepEqual(trainableLayerIds(6, 10), [0, 1, 2, 3, 4, 5]);
  const mlpOfLast = freezeSelection(6, 1, ['mlp']);
  assert.ok(mlpOfLast('model.layers.5.mlp.down_proj.weight'));
  assert.ok(!mlpOfLast('model.layers.5.self_attn.q_proj.weight'));
  assert.ok(!mlpOfLast('model.layers.4.mlp.down_proj.weight'));
  assert.ok(!mlpOfLast('model.norm.weight') && !mlpOfLast('model.embed_tokens.weight'));
  const first = freezeSelection(12, -2, ['all']);
  assert.ok(first('model.layers.1.post_attention_layernorm.weight'));
  assert.ok(!first('model.layers.11.mlp.up_proj.weight'), 'layer 11 is not layer 1');
  assert.throws(() => checkFreezeModules(['q_proj']), (e: Error) => e instanceof UserError && /freeze_trainable_modules: "q_proj"/.test(e.message));
});

test('all-linear (PEFT) and all (LLaMA-Factory) target every decoder projection', () => {
  assert.deepEqual(parseTargets(['all-linear'], '--lora_target_modules'), [...PROJECTIONS]);
  assert.deepEqual(parseTargets(['all'], '--lora_target_modules'), [...PROJECTIONS]);
  assert.throws(() => parseTargets(['all-linear', 'lm_head'], '--lora_target_modules'), UserError);
});
