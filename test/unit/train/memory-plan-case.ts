// One configuration of memory-plan.test.ts in its own process, so that maxRSS is its own: a random-weight model of
// the given shape on the cpu backend and one training step as the trainer takes it (LoRA on `targets`, or with
// `freeze` the chosen base weights as float32 masters; activations reserved, forward + backward, clipping, AdamW);
// prints the planner's prediction and the measured peak RSS (bytes) as JSON.
// {"baseline": true}: only what a run holds before its model (how PROCESS_BASELINE_BYTES is measured).
//   node --import tsx test/unit/train/memory-plan-case.ts '<json>'

import '../../../src/cli/commands.ts'; // the modules `alpaca-lora` has loaded when it plans
import { CpuBackend } from '../../../src/backends/native/cpu.ts';
import { loadCpuAddon } from '../../../src/backends/native/cpu-addon.ts';
import { activationDtypeFor } from '../../../src/model/activation-dtype.ts';
import { forwardBackward, reserveActivations } from '../../../src/model/compute.ts';
import { estimateWeightMemory } from '../../../src/model/inspect.ts';
import { expectedWeights } from '../../../src/formats/weight-names.ts';
import { enableFullFinetune } from '../../../src/model/full-finetune.ts';
import { createLoraAdapter, initLoraAdapter, loraParameters, type Projection } from '../../../src/model/lora.ts';
import { freezeSelection } from '../../../src/train/methods/freeze-selection.ts';
import { AdamW, clipGradNorm, TORCH_ADAMW_DEFAULTS } from '../../../src/train/optimizer.ts';
import { planMemory } from '../../../src/train/memory-plan.ts';
import { benchConfig, randomModel, type WeightDtype } from '../../../bench/random-model.ts';
import type { BenchShape } from '../../../bench/shapes.ts';

export interface MemoryCase {
  baseline?: boolean;
  shape: BenchShape;
  weightDtype: WeightDtype;
  mb: number;
  seq: number;
  checkpointing: boolean;
  targets: Projection[];
  /** Train DoRA (magnitudes, factors, each target's saved z). */
  dora?: boolean;
  /** Train base weights instead of LoRA: these layers and modules (freeze_trainable_*), or null: every weight (full). */
  freeze?: { layers: number; modules: string[] } | null;
}

const c = JSON.parse(process.argv[2]!) as MemoryCase;
const addon = loadCpuAddon();
if ('unavailable' in addon) throw new Error(`cpu backend: ${addon.unavailable}`);
const be = new CpuBackend(addon);
be.describe();
if (c.baseline) {
  console.log(JSON.stringify({ measured: process.resourceUsage().maxRSS * 1024 }));
} else {
  const config = benchConfig(c.shape, 'memory-plan case');
  const activationDtype = activationDtypeFor('auto', 'cpu', c.weightDtype);
  const training = c.freeze !== undefined;
  const trains = c.freeze ? freezeSelection(config.numLayers, c.freeze.layers, c.freeze.modules) : () => true;
  const predicted = planMemory(config, estimateWeightMemory(config, c.weightDtype.toUpperCase() as 'F32' | 'BF16' | 'F16', null), {
    backend: 'cpu', microBatchSize: c.mb, seqLen: c.seq, lora: training ? null : { targets: c.targets, r: 8, dora: c.dora ?? false }, checkpointing: c.checkpointing, activationDtype,
    ...(c.freeze ? { trainableWeights: expectedWeights(config).map((w) => w.name).filter(trains) } : {}),
  });
  const model = randomModel(be, config, c.weightDtype);
  const adapter = training ? null : createLoraAdapter(be, config, { r: 8, alpha: 16, dropout: 0.05, targets: c.targets, useRslora: false, useDora: c.dora ?? false });
  if (adapter) initLoraAdapter(be, adapter, 'kaiming', 1);
  const params = adapter ? loraParameters(adapter) : enableFullFinetune(model, trains);
  const opt = new AdamW(be, params, TORCH_ADAMW_DEFAULTS);
  const scratch = be.alloc([1], 'f32', 'optim');
  const lora = adapter && { adapter, dropout: 0.05, seed: 0 };
  reserveActivations(model, c.mb, c.seq, lora, { checkpointing: c.checkpointing, dtype: activationDtype });
  const inputIds = Int32Array.from({ length: c.mb * c.seq }, (_, i) => 3 + ((i * 7919) % (config.vocabSize - 3)));
  for (const p of params) be.fill(p.grad, 0);
  await forwardBackward(model, { B: c.mb, T: c.seq, inputIds, attentionMask: null, labels: null }, lora, 1 / (c.mb * c.seq));
  await clipGradNorm(be, params, 1.0, scratch);
  opt.update(3e-4);
  await be.sync();
  console.log(JSON.stringify({ predicted, measured: process.resourceUsage().maxRSS * 1024 }));
}
