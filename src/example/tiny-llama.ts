// A tiny LLaMA with seeded random weights, written as a Hugging Face folder (config.json,
// generation_config.json, model.safetensors) that loadModel and transformers both read. For the built-in
// example and tests; the weights have learned nothing.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng } from '../engine/random.ts';
import type { HostTensor } from '../formats/host-tensor.ts';
import { writeSafetensors } from '../formats/safetensors-write.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';

export interface TinyLlamaShape {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  maxPositions: number;
}

export function tinyLlamaConfig(s: TinyLlamaShape): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', attention_bias: false, attention_dropout: 0.0, mlp_bias: false,
    bos_token_id: 1, eos_token_id: 2, pad_token_id: null, hidden_act: 'silu', initializer_range: 0.02, dtype: 'float32',
    hidden_size: s.hiddenSize, intermediate_size: s.intermediateSize, num_hidden_layers: s.numLayers,
    num_attention_heads: s.numHeads, num_key_value_heads: s.numKvHeads, head_dim: s.hiddenSize / s.numHeads,
    max_position_embeddings: s.maxPositions, rms_norm_eps: 1e-6, rope_parameters: { rope_theta: 10000.0, rope_type: 'default' },
    tie_word_embeddings: true, use_cache: true, vocab_size: s.vocabSize,
  };
}

/**
 * Seeded weights. Embeddings are larger than a fresh model's (std 0.5) so that the tied head can express
 * sharp distributions; projections keep activations at unit scale (std 1/sqrt(in)); norms are 1.
 */
export function tinyLlamaWeights(s: TinyLlamaShape, seed: number): Map<string, HostTensor> {
  const rng = new Rng(seed);
  const out = new Map<string, HostTensor>();
  const normal = (name: string, shape: number[], std: number) => {
    const data = new Float32Array(shape[0]! * (shape[1] ?? 1));
    for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
    out.set(name, { dtype: 'F32', shape, data });
  };
  const ones = (name: string, n: number) => out.set(name, { dtype: 'F32', shape: [n], data: new Float32Array(n).fill(1) });
  const C = s.hiddenSize, F = s.intermediateSize, HD = C / s.numHeads, KV = s.numKvHeads * HD;
  normal('model.embed_tokens.weight', [s.vocabSize, C], 0.15);
  for (let l = 0; l < s.numLayers; l++) {
    const p = `model.layers.${l}`;
    ones(`${p}.input_layernorm.weight`, C);
    ones(`${p}.post_attention_layernorm.weight`, C);
    normal(`${p}.self_attn.q_proj.weight`, [C, C], 1 / Math.sqrt(C));
    normal(`${p}.self_attn.k_proj.weight`, [KV, C], 1 / Math.sqrt(C));
    normal(`${p}.self_attn.v_proj.weight`, [KV, C], 1 / Math.sqrt(C));
    normal(`${p}.self_attn.o_proj.weight`, [C, C], 0.5 / Math.sqrt(C));
    normal(`${p}.mlp.gate_proj.weight`, [F, C], 1 / Math.sqrt(C));
    normal(`${p}.mlp.up_proj.weight`, [F, C], 1 / Math.sqrt(C));
    normal(`${p}.mlp.down_proj.weight`, [C, F], 0.5 / Math.sqrt(F));
  }
  ones('model.norm.weight', C);
  return out;
}

/** Writes the model folder (config, generation config, weights); the tokenizer is written separately. */
export async function writeTinyLlama(dir: string, s: TinyLlamaShape, seed: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, 'model.safetensors'), tinyLlamaWeights(s, seed), { format: 'pt' });
  await writeFileAtomic(join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }, null, 2) + '\n');
  await writeFileAtomic(join(dir, 'config.json'), JSON.stringify(tinyLlamaConfig(s), null, 2) + '\n');
}
