// A merged LLaMA checkpoint as llama.cpp reads it from GGUF: the architecture metadata, the tensors under
// GGUF names with q/k rows in llama.cpp's interleaved rotary order, each stored as the --outtype asks
// (1-D tensors stay F32; rows that are not whole blocks fall back to F16, as llama.cpp's converter does;
// q4_k_m, q5_k_m and q6_k mix types per tensor as llama-quantize does: gguf-mix.ts),
// and Llama 3 rope scaling as a rope_freqs tensor. Not the vocabulary (gguf-vocab.ts) or the file format.

import { basename, resolve } from 'node:path';
import type { LlamaConfig } from '../arch/llama-config.ts';
import { f32ToHalf } from '../engine/dtype.ts';
import { UserError } from '../errors.ts';
import type { GgmlType, GgufValue } from '../formats/gguf.ts';
import { quantizeQ5_K, quantizeQ6_K } from '../formats/gguf-kquant.ts';
import { quantizeQ4_0, quantizeQ4_K, quantizeQ8_0 } from '../formats/gguf-quant.ts';
import { gguf, type GgufTensorOut } from '../formats/gguf-write.ts';
import { permuteRotaryRows, rotaryHeads } from '../formats/meta-checkpoint.ts';
import { bytesOf } from '../formats/host-tensor.ts';
import { renameWeight } from '../formats/weight-names.ts';
import { ropeInvFreq } from '../model/rope.ts';
import { mixTensorType, type Mix } from './gguf-mix.ts';
import type { MergedCheckpoint } from './merged-checkpoint.ts';

export type OutType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_k' | 'q4_k_m' | 'q5_k_m' | 'q6_k';

export const OUT_TYPES: readonly OutType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q6_k', 'q5_k_m', 'q4_k_m', 'q4_0', 'q4_k'];

/** q4_0 and q4_k are one type throughout (llama-quantize --pure); the llama.cpp names mix as llama-quantize does. */
const MIX: Readonly<Record<OutType, Mix>> = {
  f32: { base: 'F32' }, f16: { base: 'F16' }, bf16: { base: 'BF16' }, q8_0: { base: 'Q8_0' }, q4_0: { base: 'Q4_0' }, q4_k: { base: 'Q4_K' },
  q6_k: { base: 'Q6_K', output: 'Q6_K' },
  q5_k_m: { base: 'Q5_K', moreBits: 'Q6_K', output: 'Q6_K' },
  q4_k_m: { base: 'Q4_K', moreBits: 'Q6_K', output: 'Q6_K' },
};

/** llama.cpp's general.file_type (LLAMA_FTYPE_*) of each outtype. */
const FILE_TYPE: Readonly<Record<OutType, number>> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7, q4_k: 14, q4_k_m: 15, q5_k_m: 17, q6_k: 18, bf16: 32 };

/** llama.cpp's architecture for a config, and whether q/k rows are permuted for it (rotate-half archs are not). */
export function ggufArchitecture(config: LlamaConfig): { arch: 'llama' | 'qwen2'; permute: boolean } {
  return config.modelType === 'qwen2' ? { arch: 'qwen2', permute: false } : { arch: 'llama', permute: true };
}

/** general.* and <arch>.* metadata. */
export function ggufModelMetadata(config: LlamaConfig, modelDir: string, outtype: OutType): Map<string, GgufValue> {
  const { arch } = ggufArchitecture(config);
  const m = new Map<string, GgufValue>([
    ['general.architecture', gguf.str(arch)],
    ['general.type', gguf.str('model')],
    ['general.name', gguf.str(basename(resolve(modelDir)))],
    ['general.file_type', gguf.u32(FILE_TYPE[outtype])],
    ['general.quantization_version', gguf.u32(2)],
    [`${arch}.vocab_size`, gguf.u32(config.vocabSize)],
    [`${arch}.context_length`, gguf.u32(config.maxPositionEmbeddings)],
    [`${arch}.embedding_length`, gguf.u32(config.hiddenSize)],
    [`${arch}.block_count`, gguf.u32(config.numLayers)],
    [`${arch}.feed_forward_length`, gguf.u32(config.intermediateSize)],
    [`${arch}.attention.head_count`, gguf.u32(config.numHeads)],
    [`${arch}.attention.head_count_kv`, gguf.u32(config.numKvHeads)],
    [`${arch}.attention.layer_norm_rms_epsilon`, gguf.f32(config.rmsNormEps)],
    [`${arch}.attention.key_length`, gguf.u32(config.headDim)],
    [`${arch}.attention.value_length`, gguf.u32(config.headDim)],
    [`${arch}.rope.dimension_count`, gguf.u32(config.headDim)],
    [`${arch}.rope.freq_base`, gguf.f32(config.ropeTheta)],
  ]);
  const s = config.ropeScaling;
  if (s?.type === 'linear') {
    m.set(`${arch}.rope.scaling.type`, gguf.str('linear'));
    m.set(`${arch}.rope.scaling.factor`, gguf.f32(s.factor));
  } else if (s?.type === 'dynamic') {
    throw new UserError(`${modelDir}: dynamic NTK rope scaling has no GGUF equivalent that llama.cpp runs`);
  }
  return m;
}

/** The merged weights under GGUF names, in the order llama.cpp's converter writes them, each produced on demand. */
export function ggufTensors(merged: MergedCheckpoint, outtype: OutType): Map<string, GgufTensorOut> {
  const { config } = merged;
  const { permute } = ggufArchitecture(config);
  const out = new Map<string, GgufTensorOut>();
  const tied = !merged.names.includes('lm_head.weight');
  const ropeFactors = llama3RopeFactors(config);
  if (ropeFactors) out.set('rope_freqs.weight', { type: 'F32', shape: [ropeFactors.length], load: () => bytesOf(ropeFactors) });
  for (const name of merged.names) {
    const shape = merged.info(name).shape;
    const ggufName = renameWeight(name, 'hf', 'gguf');
    const type = tensorType(shape, outtype, ggufName, config.numLayers, tied);
    const heads = permute ? rotaryHeads(config, name) : null;
    out.set(ggufName, {
      type,
      shape,
      load: () => {
        let values = merged.readFloat32(name);
        if (heads !== null) values = permuteRotaryRows(values, heads, config.headDim, shape[1] ?? 1, 'interleaved');
        return encode(values, type);
      },
    });
  }
  return out;
}

/** 1-D tensors stay F32; a quantized type needs rows of whole blocks, else F16 (Q6_K: Q8_0). */
export function tensorType(shape: readonly number[], outtype: OutType, ggufName = '', numLayers = 0, tiedEmbeddings = false): GgmlType {
  return mixTensorType(ggufName, shape, MIX[outtype], numLayers, tiedEmbeddings);
}

/** float32 values in a ggml type's bytes. */
export function encode(values: Float32Array, type: GgmlType): Uint8Array {
  switch (type) {
    case 'F32': return bytesOf(values);
    case 'F16': return bytesOf(f32ToHalf(values, 'f16'));
    case 'BF16': return bytesOf(f32ToHalf(values, 'bf16'));
    case 'Q8_0': return quantizeQ8_0(values);
    case 'Q4_0': return quantizeQ4_0(values);
    case 'Q4_K': return quantizeQ4_K(values);
    case 'Q5_K': return quantizeQ5_K(values);
    case 'Q6_K': return quantizeQ6_K(values);
  }
}

/** Per rotary frequency, the divisor Llama 3 scaling applies (what llama.cpp reads from rope_freqs.weight). */
export function llama3RopeFactors(config: LlamaConfig): Float32Array | null {
  const s = config.ropeScaling;
  if (s?.type !== 'llama3') return null;
  const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositions / s.highFreqFactor;
  const unscaled = ropeInvFreq({ ...config, ropeScaling: null });
  return Float32Array.from(unscaled, (freq) => {
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) return 1;
    if (wavelen > lowWavelen) return s.factor;
    const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return 1 / ((1 - smooth) / s.factor + smooth);
  });
}
