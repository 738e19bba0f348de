// One case of bench/cpu-backend.ts (or bench/quant-train.ts), in its own process: LoRA training steps (forward,
// backward, clip 1.0, AdamW) of a random-weight LLaMA on one backend, timed after warm-up; prints one JSON line.
// The model is made in memory, or loaded from `modelDir` (quantized on load with `quantize`).
//   node --import tsx bench/lora-train-case.ts '<json: {shape, backend, weightDtype, mb, seq, warmup, steps, checkpointing?}>'

import { JsBackend } from '../src/backends/js/index.ts';
import { cpuLoader } from '../src/backends/native/cpu.ts';
import type { Backend } from '../src/engine/backend.ts';
import { Rng } from '../src/engine/random.ts';
import { forwardBackward, reserveActivations } from '../src/model/compute.ts';
import { resolveActivationDtype } from '../src/model/activation-dtype.ts';
import { loadModel } from '../src/model/load.ts';
import { bnbConfigOf } from '../src/model/quantization-options.ts';
import { createLoraAdapter, initLoraAdapter, loraParameters, zeroLoraGrads } from '../src/model/lora.ts';
import { AdamW, clipGradNorm, TORCH_ADAMW_DEFAULTS } from '../src/train/optimizer.ts';
import { benchConfig, randomModel } from './random-model.ts';
import { LLAMA_SHAPES, SHAPES, type TrainCase } from './shapes.ts';

const c = JSON.parse(process.argv[2]!) as TrainCase;
const rng = new Rng(1);

function makeBackend(name: string): { be: Backend; details: string } {
  if (name === 'js') return { be: new JsBackend(), details: 'plain TypeScript' };
  const be = cpuLoader.load(); // the GEMM kernels chosen as the commands choose them
  if ('unavailable' in be) throw new Error(`cpu backend: ${be.unavailable}`);
  if (c.computeDtype) be.addon.setComputeDtype(c.computeDtype);
  return { be, details: be.describe() };
}

const config = benchConfig(SHAPES[c.shape] ?? LLAMA_SHAPES[c.shape]!, c.shape);
const { be, details } = makeBackend(c.backend);
const loadStart = performance.now();
const model = c.modelDir
  ? await loadModel(be, c.modelDir, { quantize: bnbConfigOf(c.quantize === 'nf4' ? { loadIn4bit: true, bnb4bitUseDoubleQuant: true } : { loadIn8bit: c.quantize === 'int8' }) })
  : randomModel(be, config, c.weightDtype);
const loadSeconds = (performance.now() - loadStart) / 1000;
const adapter = createLoraAdapter(be, config, { r: 8, alpha: 16, dropout: 0.05, targets: ['q_proj', 'v_proj'], useRslora: false });
initLoraAdapter(be, adapter, 'kaiming', 1);
const params = loraParameters(adapter);
const opt = new AdamW(be, params, TORCH_ADAMW_DEFAULTS);
const scratch = be.alloc([1], 'f32', 'scratch');
const inputIds = new Int32Array(c.mb * c.seq);
for (let i = 0; i < inputIds.length; i++) inputIds[i] = 3 + rng.int(config.vocabSize - 3);
const batch = { B: c.mb, T: c.seq, inputIds, attentionMask: null, labels: null };
const activationDtype = resolveActivationDtype(c.activationDtype ?? 'f32', model);
reserveActivations(model, c.mb, c.seq, { adapter, dropout: 0.05, seed: 0 }, { checkpointing: c.checkpointing ?? false, dtype: activationDtype });

async function step(i: number): Promise<number> {
  zeroLoraGrads(be, adapter);
  const r = await forwardBackward(model, batch, { adapter, dropout: 0.05, seed: i }, 1 / (c.mb * (c.seq - 1)));
  await clipGradNorm(be, params, 1.0, scratch);
  opt.update(3e-4);
  return r.lossSum / r.tokens;
}

for (let i = 0; i < c.warmup; i++) await step(i);
const t0 = performance.now();
let loss = 0;
for (let i = 0; i < c.steps; i++) loss = await step(c.warmup + i);
const seconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({
  ...c, activationDtype, details, loss: Number(loss.toFixed(4)), load_s: Number(loadSeconds.toFixed(1)),
  tokens_per_s: Number(((c.mb * c.seq * c.steps) / seconds).toFixed(1)),
  step_s: Number((seconds / c.steps).toFixed(3)),
  peak_rss_gib: Number((process.resourceUsage().maxRSS / 2 ** 20).toFixed(2)),
}));
