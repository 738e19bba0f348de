// Random-weight LLaMA models of a benchmark shape, in memory on a backend or as an HF folder on disk (for
// loading and GGUF export). Not a test fixture: nothing here is compared.

import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseLlamaConfig, type LlamaConfig } from '../src/arch/llama-config.ts';
import { projectionFeatures, PROJECTIONS, type Projection } from '../src/arch/projections.ts';
import type { Backend } from '../src/engine/backend.ts';
import { f32ToHalf } from '../src/engine/dtype.ts';
import { Rng } from '../src/engine/random.ts';
import type { Tensor } from '../src/engine/tensor.ts';
import type { PendingTensor } from '../src/formats/output-tensor.ts';
import { writeSafetensors } from '../src/formats/safetensors-write.ts';
import { expectedWeights } from '../src/formats/weight-names.ts';
import type { LinearParams } from '../src/model/linear.ts';
import type { LayerWeights, Model } from '../src/model/llama.ts';
import { SHAPES, type BenchShape } from './shapes.ts';

export type WeightDtype = 'f32' | 'bf16' | 'f16';

export function benchConfig(shape: BenchShape, name: string): LlamaConfig {
  return parseLlamaConfig(hfConfig(shape), `bench shape ${name}`);
}

function hfConfig(shape: BenchShape): Record<string, unknown> {
  return { model_type: 'llama', architectures: ['LlamaForCausalLM'], ...shape.hf, rms_norm_eps: 1e-6, max_position_embeddings: 1024, bos_token_id: 1, eos_token_id: 2 };
}

function values(rng: Rng, n: number, name: string): Float32Array {
  const norm = name.endsWith('norm.weight');
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = (norm ? 1 : 0) + (rng.next() * 2 - 1) * (norm ? 0.1 : 0.035);
  return v;
}

/** A model of random weights held by `be`. */
export function randomModel(be: Backend, config: LlamaConfig, dtype: WeightDtype, seed = 1): Model {
  const rng = new Rng(seed);
  const make = (shape: number[], name: string): Tensor => {
    const t = be.alloc(shape, dtype, 'weights');
    be.upload(t, values(rng, t.size, name));
    return t;
  };
  const C = config.hiddenSize;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const proj = {} as Record<Projection, LinearParams>;
    for (const p of PROJECTIONS) {
      const { inFeatures, outFeatures } = projectionFeatures(config, p);
      proj[p] = { weight: make([outFeatures, inFeatures], p), bias: null, dWeight: null, dBias: null };
    }
    layers.push({ inputNorm: make([C], 'input_layernorm.weight'), postNorm: make([C], 'post_attention_layernorm.weight'), proj });
  }
  const embed = make([config.vocabSize, C], 'embed');
  const lmHead = config.tieWordEmbeddings ? embed : make([config.vocabSize, C], 'lm_head');
  return { be, config, weights: { embed, layers, norm: make([C], 'norm.weight'), lmHead } };
}

/**
 * Writes an HF folder (config.json, bf16 model.safetensors, and `tokenizerModel` as tokenizer.model when given).
 * Each tensor is made only when the writer reaches it, so a 13B model never sits in memory; large tensors repeat
 * a 4 Mi-value random pool from a per-tensor offset (memory speed: the values do not matter to a benchmark).
 */
export async function writeRandomHfModel(dir: string, shape: BenchShape, tokenizerModel: string | null, seed = 1): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const config = benchConfig(shape, dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...hfConfig(shape), torch_dtype: 'bfloat16' }, null, 2));
  if (tokenizerModel) copyFileSync(tokenizerModel, join(dir, 'tokenizer.model'));
  const rng = new Rng(seed);
  const pool = f32ToHalf(values(rng, POOL, 'weight'), 'bf16');
  const entries: [string, PendingTensor][] = expectedWeights(config).map(({ name, shape: s }) => {
    const n = s.reduce((a, b) => a * b, 1);
    const offset = rng.int(POOL);
    return [name, { dtype: 'BF16', shape: s, load: () => (n < POOL || name.endsWith('norm.weight') ? f32ToHalf(values(new Rng(offset), n, name), 'bf16') : tiled(pool, n, offset)) }];
  });
  await writeSafetensors(join(dir, 'model.safetensors'), entries);
}

const POOL = 1 << 22;

/**
 * The HF folder a decode or serving benchmark runs `model` from: ../shared's tiny-english itself, else random
 * weights of SHAPES[model] written under `work` with tiny-english's tokenizer.
 */
export async function benchModelDir(model: string, tinyEnglish: string, work: string): Promise<string> {
  if (model === 'tiny-english') return tinyEnglish;
  if (!SHAPES[model]) throw new Error(`unknown model ${model}; known: tiny-english, ${Object.keys(SHAPES).join(', ')}`);
  const dir = join(work, model);
  console.error(`writing random ${model} weights ...`);
  await writeRandomHfModel(dir, SHAPES[model]!, join(tinyEnglish, 'tokenizer.model'));
  return dir;
}

function tiled(pool: Uint16Array, n: number, offset: number): Uint16Array {
  const out = new Uint16Array(n);
  for (let i = 0; i < n; ) {
    const from = (offset + i) % pool.length;
    const count = Math.min(pool.length - from, n - i);
    out.set(pool.subarray(from, from + count), i);
    i += count;
  }
  return out;
}
