// Meta's original LLaMA layout (consolidated.NN.pth + params.json): params.json derived from a config,
// including the multiple_of / ffn_dim_multiplier that reproduce its intermediate size, and the q/k row
// order of rotary pairs: HF's rotate-half halves vs Meta's interleaved pairs (GGUF uses Meta's).
// Weight names are in weight-names.ts; writing the .pth is torch-write.ts.

import type { LlamaConfig } from '../arch/llama-config.ts';
import { UserError } from '../errors.ts';

export interface MetaParams {
  dim: number;
  n_layers: number;
  n_heads: number;
  n_kv_heads?: number;
  vocab_size: number;
  multiple_of: number;
  ffn_dim_multiplier?: number;
  norm_eps: number;
  rope_theta: number;
  use_scaled_rope?: boolean;
}

/** params.json for a config; throws for what Meta's layout cannot express (biases, head_dim, rope scaling). */
export function metaParams(config: LlamaConfig, source: string): MetaParams {
  const fail = (what: string): never => {
    throw new UserError(`${source}: ${what} has no place in Meta's params.json / consolidated.pth layout`);
  };
  if (Object.values(config.biases).some((b) => b)) fail('linear-layer biases');
  if (config.headDim * config.numHeads !== config.hiddenSize) fail(`head_dim ${config.headDim} (not hidden_size / num_attention_heads)`);
  const scaling = config.ropeScaling;
  const metaLlama3 = scaling?.type === 'llama3' && scaling.factor === 8 && scaling.lowFreqFactor === 1 && scaling.highFreqFactor === 4 && scaling.originalMaxPositions === 8192;
  if (scaling && !metaLlama3) fail(`rope scaling ${JSON.stringify(scaling)}`);
  return {
    dim: config.hiddenSize,
    n_layers: config.numLayers,
    n_heads: config.numHeads,
    ...(config.numKvHeads !== config.numHeads ? { n_kv_heads: config.numKvHeads } : {}),
    vocab_size: config.vocabSize,
    ...ffnParams(config.hiddenSize, config.intermediateSize, source),
    norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    ...(metaLlama3 ? { use_scaled_rope: true } : {}),
  };
}

/** The intermediate size Meta's model.py computes from params. */
export function metaIntermediateSize(dim: number, multipleOf: number, ffnDimMultiplier?: number): number {
  let hidden = Math.trunc((2 * 4 * dim) / 3);
  if (ffnDimMultiplier !== undefined) hidden = Math.trunc(ffnDimMultiplier * hidden);
  return multipleOf * Math.ceil(hidden / multipleOf);
}

/**
 * multiple_of alone when it reproduces `intermediate`, as for LLaMA 1/2 (Meta's 256 first, else the largest power of two);
 * else with an ffn_dim_multiplier, as Llama 3 and models narrower than 8/3 x dim need.
 */
export function ffnParams(dim: number, intermediate: number, source: string): { multiple_of: number; ffn_dim_multiplier?: number } {
  const largest = intermediate & -intermediate; // largest power of two dividing it
  for (const m of [256, ...Array.from({ length: Math.log2(largest) + 1 }, (_, i) => largest / 2 ** i)]) {
    if (intermediate % m === 0 && metaIntermediateSize(dim, m) === intermediate) return { multiple_of: m };
  }
  const base = Math.trunc((2 * 4 * dim) / 3);
  for (const multiplier of [intermediate / base, (intermediate + 0.5) / base]) {
    if (metaIntermediateSize(dim, largest, multiplier) === intermediate) return { multiple_of: largest, ffn_dim_multiplier: multiplier };
  }
  throw new UserError(`${source}: no multiple_of / ffn_dim_multiplier gives intermediate_size ${intermediate} for dim ${dim}`);
}

type Rows = Float32Array | Uint16Array | Uint8Array;

/**
 * Reorders the rows of a q or k weight (heads * headDim rows of `cols` elements; a bias has cols = 1) from HF's
 * rotate-half order (pair i with i + headDim/2) to Meta's interleaved one (pair 2i with 2i + 1), or back.
 */
export function permuteRotaryRows<T extends Rows>(data: T, heads: number, headDim: number, cols: number, to: 'interleaved' | 'rotate-half'): T {
  if (data.length !== heads * headDim * cols) throw new Error(`permuteRotaryRows: ${data.length} elements are not ${heads} x ${headDim} rows of ${cols}`);
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      for (let s = 0; s < 2; s++) {
        const interleaved = (h * headDim + 2 * j + s) * cols;
        const rotateHalf = (h * headDim + s * half + j) * cols;
        const [dst, src] = to === 'interleaved' ? [interleaved, rotateHalf] : [rotateHalf, interleaved];
        out.set(data.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

/** How many heads a q or k projection's rows hold; null for every other tensor. */
export function rotaryHeads(config: LlamaConfig, hfName: string): number | null {
  if (/\.self_attn\.q_proj\.(weight|bias)$/.test(hfName)) return config.numHeads;
  if (/\.self_attn\.k_proj\.(weight|bias)$/.test(hfName)) return config.numKvHeads;
  return null;
}

/** The dimension Meta's model-parallel files split a weight along (by its Meta name); null: each file holds a copy. */
export function metaSplitDim(metaName: string): 0 | 1 | null {
  if (/(^tok_embeddings|\.attention\.wo|\.feed_forward\.w2)\.weight$/.test(metaName)) return 1;
  if (/(^output|\.attention\.w[qkv]|\.feed_forward\.w[13])\.weight$/.test(metaName)) return 0;
  return null;
}

/** Part `part` of `parts` of a (rows, cols) tensor along `dim`. */
export function sliceAlong<T extends Rows>(data: T, rows: number, cols: number, dim: 0 | 1, part: number, parts: number): T {
  if (dim === 0) return data.slice((part * rows * cols) / parts, ((part + 1) * rows * cols) / parts) as T;
  const width = cols / parts;
  const out = new (data.constructor as new (n: number) => T)(rows * width);
  for (let r = 0; r < rows; r++) out.set(data.subarray(r * cols + part * width, r * cols + (part + 1) * width), r * width);
  return out;
}

/** The parts of a split tensor joined back along `dim`. */
export function joinAlong<T extends Rows>(parts: T[], rows: number, cols: number, dim: 0 | 1): T {
  const out = new (parts[0]!.constructor as new (n: number) => T)(rows * cols);
  const width = cols / parts.length;
  parts.forEach((p, i) => {
    if (dim === 0) out.set(p, (i * rows * cols) / parts.length);
    else for (let r = 0; r < rows; r++) out.set(p.subarray(r * width, (r + 1) * width), r * cols + i * width);
  });
  return out;
}
