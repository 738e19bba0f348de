// Throughput of the cuda backend on LLaMA shapes with random bf16 weights, measured the way
// ../shared/bench/hf_peft_baseline.py and hf_generate_baseline.py measure transformers + PEFT: LoRA training
// steps (forward + backward, clip_grad_norm 1.0, AdamW) timed after warm-up, and batch-1 greedy decoding
// of 128 tokens after a 64-token prompt (prefill included). Prints one JSON line per case on stdout.
// Not the comparison table (bench/cuda-table.ts).
//   node --import tsx bench/cuda-train.ts [--only NAME] [--steps 10] [--warm 3]    (ALPACA_CUDA_PRECISION: bf16)

import { parseLlamaConfig, type LlamaConfig } from '../src/arch/llama-config.ts';
import { projectionFeatures } from '../src/arch/projections.ts';
import { createCudaBackend, type CudaBackend } from '../src/backends/native/cuda.ts';
import { f32ToBf16 } from '../src/engine/dtype.ts';
import { Rng } from '../src/engine/random.ts';
import type { Tensor } from '../src/engine/tensor.ts';
import { forwardBackward } from '../src/model/compute.ts';
import { createDecoder, decodeBatch, freeDecoder } from '../src/model/decode.ts';
import { kvBlocksFor } from '../src/model/kv-cache.ts';
import type { LinearParams } from '../src/model/linear.ts';
import type { LayerWeights, Model } from '../src/model/llama.ts';
import { createLoraAdapter, initLoraAdapter, loraParameters, PROJECTIONS, zeroLoraGrads, type Projection } from '../src/model/lora.ts';
import { AdamW, clipGradNorm, TORCH_ADAMW_DEFAULTS } from '../src/train/optimizer.ts';
import { flag } from './flags.ts';

// HF config keys, as the Python baselines spell them.
const SHAPES = {
  'llama-7b': { vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32 },
  'tinyllama-1.1b': { vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 32, num_key_value_heads: 4 },
} as const;
type Shape = keyof typeof SHAPES;

const QV: Projection[] = ['q_proj', 'v_proj'];
interface TrainCase { kind: 'train'; name: string; shape: Shape; targets: Projection[]; r: number; alpha: number; mb: number; seq: number }
interface DecodeCase { kind: 'decode'; name: string; shape: Shape; prompt: number; newTokens: number }
const CASES: (TrainCase | DecodeCase)[] = [
  { kind: 'train', name: '7b-qv-r8-mb8-s256', shape: 'llama-7b', targets: QV, r: 8, alpha: 16, mb: 8, seq: 256 },
  { kind: 'train', name: '7b-all-r16-mb4-s512', shape: 'llama-7b', targets: [...PROJECTIONS], r: 16, alpha: 32, mb: 4, seq: 512 },
  { kind: 'train', name: '1.1b-qv-r8-mb16-s256', shape: 'tinyllama-1.1b', targets: QV, r: 8, alpha: 16, mb: 16, seq: 256 },
  { kind: 'decode', name: 'decode-7b', shape: 'llama-7b', prompt: 64, newTokens: 128 },
  { kind: 'decode', name: 'decode-1.1b', shape: 'tinyllama-1.1b', prompt: 64, newTokens: 128 },
];

const rng = new Rng(1);

/** Random bf16 bits, uniform with standard deviation 0.02 (the HF init's scale), picked from a small table. */
function randomBits(n: number): Uint16Array {
  const table = Uint16Array.from({ length: 65536 }, () => f32ToBf16((rng.next() * 2 - 1) * 0.02 * Math.sqrt(3)));
  const bits = new Uint16Array(n);
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bits[i] = table[x & 0xffff]!;
  }
  return bits;
}

function randomModel(be: CudaBackend, config: LlamaConfig): Model {
  const C = config.hiddenSize, V = config.vocabSize;
  const pool = randomBits(Math.max(V * C, config.intermediateSize * C));
  const weight = (shape: number[]): Tensor => {
    const t = be.alloc(shape, 'bf16', 'weights');
    be.upload(t, pool.subarray(0, t.size));
    return t;
  };
  const ones = (): Tensor => {
    const t = be.alloc([C], 'bf16', 'weights');
    be.upload(t, new Float32Array(C).fill(1));
    return t;
  };
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const proj = {} as Record<Projection, LinearParams>;
    for (const p of PROJECTIONS) {
      const { inFeatures, outFeatures } = projectionFeatures(config, p);
      proj[p] = { weight: weight([outFeatures, inFeatures]), bias: null, dWeight: null, dBias: null };
    }
    layers.push({ inputNorm: ones(), postNorm: ones(), proj });
  }
  const embed = weight([V, C]);
  return { be, config, weights: { embed, layers, norm: ones(), lmHead: config.tieWordEmbeddings ? embed : weight([V, C]) } };
}

function baseParams(config: LlamaConfig): number {
  const C = config.hiddenSize, F = config.intermediateSize, KD = config.numKvHeads * config.headDim;
  const layer = 2 * C * C + 2 * C * KD + 3 * C * F + 2 * C;
  return config.numLayers * layer + C + config.vocabSize * C * (config.tieWordEmbeddings ? 1 : 2);
}

const randomIds = (n: number, V: number) => Int32Array.from({ length: n }, () => 3 + rng.int(V - 3));
const gib = (bytes: number) => Number((bytes / 2 ** 30).toFixed(2));

async function train(be: CudaBackend, m: Model, c: TrainCase, steps: number, warm: number): Promise<Record<string, unknown>> {
  const adapter = createLoraAdapter(be, m.config, { r: c.r, alpha: c.alpha, dropout: 0.05, targets: c.targets, useRslora: false });
  initLoraAdapter(be, adapter, 'kaiming', 1);
  const params = loraParameters(adapter);
  const opt = new AdamW(be, params, TORCH_ADAMW_DEFAULTS);
  const scratch = be.alloc([1], 'f32', 'scratch');
  const batch = { B: c.mb, T: c.seq, inputIds: randomIds(c.mb * c.seq, m.config.vocabSize), attentionMask: null, labels: null };
  let loss = 0;
  const step = async (i: number) => {
    const r = await forwardBackward(m, batch, { adapter, dropout: 0.05, seed: i }, 1 / (c.mb * (c.seq - 1)));
    await clipGradNorm(be, params, 1.0, scratch);
    opt.update(3e-4);
    zeroLoraGrads(be, adapter);
    loss = r.lossSum / r.tokens;
  };
  for (let i = 0; i < warm; i++) await step(i);
  await be.sync();
  be.resetPeakMemory();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await step(warm + i);
  await be.sync();
  const seconds = (performance.now() - t0) / 1000;
  const tokens = c.mb * c.seq * steps;
  return {
    targets: c.targets, r: c.r, micro_batch: c.mb, seq: c.seq, steps,
    trainable_params: params.reduce((s, p) => s + p.param.size, 0),
    tokens_per_s: Number((tokens / seconds).toFixed(1)), step_ms: Number(((1000 * seconds) / steps).toFixed(2)),
    model_tflops: Number(((4 * baseParams(m.config) * tokens) / seconds / 1e12).toFixed(1)),
    peak_mem_gib: gib(be.memory().peak), last_loss: Number(loss.toFixed(4)),
  };
}

async function decode(be: CudaBackend, m: Model, c: DecodeCase): Promise<Record<string, unknown>> {
  const V = m.config.vocabSize;
  const generate = async (prompt: number, tokens: number) => {
    const d = createDecoder(m, kvBlocksFor(prompt + tokens));
    const seq = { blocks: [], length: 0 };
    let next = (await decodeBatch(d, [{ seq, ids: Array.from(randomIds(prompt, V)), lora: null, logits: 'argmax' }])).argmax[0]!;
    for (let i = 1; i < tokens; i++) next = (await decodeBatch(d, [{ seq, ids: [next], lora: null, logits: 'argmax' }])).argmax[0]!;
    freeDecoder(d);
  };
  await generate(c.prompt, 8);
  be.resetPeakMemory();
  const t0 = performance.now();
  await generate(c.prompt, c.newTokens);
  const seconds = (performance.now() - t0) / 1000;
  return { prompt: c.prompt, new_tokens: c.newTokens, tokens_per_s: Number((c.newTokens / seconds).toFixed(1)), peak_mem_gib: gib(be.memory().peak) };
}

const only = flag('only', '');
const steps = Number(flag('steps', '10')), warm = Number(flag('warm', '3'));
const made = createCudaBackend();
if ('unavailable' in made) throw new Error(`the cuda backend is not available: ${made.unavailable}`);
const be = made;
for (const c of CASES.filter((k) => !only || k.name === only)) {
  const config = parseLlamaConfig({ model_type: 'llama', ...SHAPES[c.shape], max_position_embeddings: 2048, tie_word_embeddings: false }, `bench shape ${c.shape}`);
  const t0 = performance.now();
  const m = randomModel(be, config);
  await be.sync();
  console.error(`${c.name}: random ${c.shape} on ${be.describe()} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const result = c.kind === 'train' ? await train(be, m, c, steps, warm) : await decode(be, m, c);
  console.log(JSON.stringify({ case: c.name, shape: c.shape, backend: 'cuda', precision: be.precision, ...result, base_params: baseParams(config), gpu: be.describe() }));
  for (const arena of ['weights', 'adapters', 'grads', 'optim', 'activations', 'scratch'] as const) be.freeArena(arena);
}
