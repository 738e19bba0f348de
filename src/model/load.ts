// Loading a HF LLaMA folder onto a backend: config.json, then the weights tensor by tensor (each is read,
// uploaded and dropped, so the host never holds two copies). Weights keep their stored dtype unless `dtype`
// asks for another. Decoder linears stored quantized by bitsandbytes, or quantized on load when `quantize`
// asks, are uploaded as stored (Backend.uploadQuantized), or dequantized when `dequantize` asks.

import { loadLlamaConfig } from '../arch/llama-config.ts';
import { PROJECTION_INFO, PROJECTIONS, type Projection } from '../arch/projections.ts';
import type { Backend } from '../engine/backend.ts';
import type { DType } from '../engine/dtype.ts';
import type { Tensor } from '../engine/tensor.ts';
import { isQuantized } from '../formats/bnb-checkpoint.ts';
import type { BnbConfig } from '../formats/bnb-config.ts';
import { toFloat32, type HostTensor } from '../formats/host-tensor.ts';
import { checkCheckpointWeights } from '../formats/weight-names.ts';
import { UserError } from '../errors.ts';
import { openQuantizedBase } from './quantized-base.ts';
import type { LinearParams } from './linear.ts';
import type { LayerWeights, LlamaWeights, Model } from './llama.ts';

export interface LoadOptions {
  /** Store every weight in this dtype instead of the checkpoint's own. */
  dtype?: Exclude<DType, 'i32'>;
  /** Quantize the decoder linears of a 16/32-bit checkpoint on load (transformers' load_in_4bit / load_in_8bit); one stored quantized is used as it is. */
  quantize?: BnbConfig | null;
  /** Upload quantized linears dequantized (4-bit to the dtype they were quantized from, 8-bit to the model's) rather than as stored. */
  dequantize?: boolean;
}

/** Uploads one host tensor, keeping its float dtype (or converting to `dtype`). */
export function uploadHostTensor(be: Backend, h: HostTensor, dtype: LoadOptions['dtype'], name: string): Tensor {
  const stored: Exclude<DType, 'i32'> | null = h.dtype === 'F32' ? 'f32' : h.dtype === 'BF16' ? 'bf16' : h.dtype === 'F16' ? 'f16' : null;
  if (!stored) throw new UserError(`weight ${name} has dtype ${h.dtype}; expected F32, BF16 or F16`);
  const target = dtype ?? stored;
  const t = be.alloc(h.shape, target, 'weights');
  be.upload(t, target === stored && stored !== 'f32' ? (h.data as Uint16Array) : toFloat32(h));
  return t;
}

export async function loadModel(be: Backend, dir: string, options: LoadOptions = {}): Promise<Model> {
  const config = loadLlamaConfig(dir);
  const loadDtype = options.dtype && ({ f32: 'F32', bf16: 'BF16', f16: 'F16' } as const)[options.dtype];
  const reader = await openQuantizedBase(dir, options.quantize ?? null, { dtype: loadDtype });
  try {
    checkCheckpointWeights(reader, config, dir);
    const get = (name: string) => uploadHostTensor(be, reader.read(name), options.dtype, name);
    const linear = (name: string) => {
      if (options.dequantize) return get(name);
      const w = reader.readWeight(name);
      return isQuantized(w) ? be.uploadQuantized(w, 'weights') : uploadHostTensor(be, w, options.dtype, name);
    };
    const layers: LayerWeights[] = [];
    for (let l = 0; l < config.numLayers; l++) {
      const prefix = `model.layers.${l}`;
      const proj = {} as Record<Projection, LinearParams>;
      for (const p of PROJECTIONS) {
        const base = `${prefix}.${PROJECTION_INFO[p].block}.${p}`;
        proj[p] = { weight: linear(`${base}.weight`), bias: config.biases[PROJECTION_INFO[p].bias] ? get(`${base}.bias`) : null, dWeight: null, dBias: null };
      }
      layers.push({ inputNorm: get(`${prefix}.input_layernorm.weight`), postNorm: get(`${prefix}.post_attention_layernorm.weight`), proj });
    }
    const embed = get('model.embed_tokens.weight');
    const weights: LlamaWeights = {
      embed,
      layers,
      norm: get('model.norm.weight'),
      lmHead: config.tieWordEmbeddings ? embed : get('lm_head.weight'),
    };
    return { be, config, weights, quantization: options.dequantize ? null : reader.quantization };
  } finally {
    reader.close();
  }
}
