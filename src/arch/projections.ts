// The seven linear projections of a LLaMA decoder block as data: their names, the block each lives in,
// the `biases` flag that governs its bias, and its (in, out) features under a config. Shared by model/
// and formats/; not the weight names of any file format (formats/weight-names.ts).

import type { LlamaConfig } from './llama-config.ts';

export const PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type Projection = (typeof PROJECTIONS)[number];

/** The block a projection lives in, and which `biases` flag governs its bias. */
export const PROJECTION_INFO: Readonly<Record<Projection, { block: 'self_attn' | 'mlp'; bias: 'q' | 'k' | 'v' | 'o' | 'mlp' }>> = {
  q_proj: { block: 'self_attn', bias: 'q' },
  k_proj: { block: 'self_attn', bias: 'k' },
  v_proj: { block: 'self_attn', bias: 'v' },
  o_proj: { block: 'self_attn', bias: 'o' },
  gate_proj: { block: 'mlp', bias: 'mlp' },
  up_proj: { block: 'mlp', bias: 'mlp' },
  down_proj: { block: 'mlp', bias: 'mlp' },
};

/** (in, out) features of a projection's weight, which is stored (out, in). */
export function projectionFeatures(config: LlamaConfig, p: Projection): { inFeatures: number; outFeatures: number } {
  const C = config.hiddenSize;
  const F = config.intermediateSize;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const features: Record<Projection, [number, number]> = {
    q_proj: [C, q], k_proj: [C, kv], v_proj: [C, kv], o_proj: [q, C], gate_proj: [C, F], up_proj: [C, F], down_proj: [F, C],
  };
  const [inFeatures, outFeatures] = features[p];
  return { inFeatures, outFeatures };
}
