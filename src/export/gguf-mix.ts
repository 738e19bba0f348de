// Which ggml type each tensor of a GGUF export gets: one type for the pure outtypes, and for q4_k_m, q5_k_m and
// q6_k the per-tensor choice of llama.cpp's quantizer (llama_tensor_get_type in src/llama-quant.cpp) for a
// dense LLaMA. Not the quantization itself (formats/gguf-quant.ts, gguf-kquant.ts).

import { GGML_BLOCK, type GgmlType } from '../formats/gguf.ts';

/** The block types of a llama.cpp file type: the default, and what its mix raises some tensors to. */
export interface Mix {
  base: GgmlType;
  /** attn_v and ffn_down in the layers use_more_bits picks (q4_k_m, q5_k_m). */
  moreBits?: GgmlType;
  /** output.weight, or token_embd.weight when the embeddings are tied (llama.cpp: Q6_K unless the type is Q8_0). */
  output?: GgmlType;
}

/** llama.cpp's use_more_bits: the first and last eighth of the layers, and every third one between. */
export function useMoreBits(layer: number, numLayers: number): boolean {
  const eighth = Math.floor(numLayers / 8);
  return layer < eighth || layer >= Math.floor((7 * numLayers) / 8) || (layer - eighth) % 3 === 2;
}

/** llama.cpp's fallback when a row is not whole 256-blocks: Q6_K to Q8_0; the others (Q5_0/Q5_1 there) to F16 here. */
function fallback(type: GgmlType, cols: number): GgmlType {
  if (cols % GGML_BLOCK[type].size === 0) return type;
  return type === 'Q6_K' && cols % GGML_BLOCK.Q8_0.size === 0 ? 'Q8_0' : 'F16';
}

/**
 * The type of GGUF tensor `name` (e.g. `blk.3.attn_v.weight`) of shape `shape` (rows last) under `mix`.
 * Layers are counted as llama.cpp counts them (its tensors are sorted by layer number), so layer = i_attention_wv.
 */
export function mixTensorType(name: string, shape: readonly number[], mix: Mix, numLayers: number, tiedEmbeddings: boolean): GgmlType {
  if (shape.length < 2) return 'F32';
  const cols = shape.at(-1)!;
  if (name === 'output.weight' || (tiedEmbeddings && name === 'token_embd.weight')) {
    const output = mix.output ?? mix.base;
    return cols % GGML_BLOCK[output].size === 0 ? output : cols % GGML_BLOCK.Q8_0.size === 0 ? 'Q8_0' : 'F16';
  }
  const layer = /^blk\.(\d+)\.(attn_v|ffn_down)\.weight$/.exec(name);
  const type = layer && mix.moreBits && useMoreBits(Number(layer[1]), numLayers) ? mix.moreBits : mix.base;
  return fallback(type, cols);
}
