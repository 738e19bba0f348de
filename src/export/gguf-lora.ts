// A LoRA adapter as a GGUF LoRA file for `llama.cpp --lora`: general.type "adapter", adapter.type "lora",
// adapter.lora.alpha chosen so that llama.cpp's alpha / r is our scaling (rsLoRA included), and per adapted
// weight `<gguf name>.lora_a` (r, in) and `.lora_b` (out, r), B's rows in llama.cpp's q/k order.

import { basename, resolve } from 'node:path';
import type { LlamaConfig } from '../arch/llama-config.ts';
import { GgufValueType, type GgufValue } from '../formats/gguf.ts';
import { gguf, type GgufTensorOut } from '../formats/gguf-write.ts';
import { permuteRotaryRows, rotaryHeads } from '../formats/meta-checkpoint.ts';
import { renameWeight } from '../formats/weight-names.ts';
import { encode, ggufArchitecture } from './gguf-model.ts';
import type { HostLora } from './host-lora.ts';

export function ggufLoraMetadata(config: LlamaConfig, lora: HostLora, adapterDir: string): Map<string, GgufValue> {
  const { arch } = ggufArchitecture(config);
  return new Map<string, GgufValue>([
    ['general.architecture', gguf.str(arch)],
    ['general.type', gguf.str('adapter')],
    ['general.name', gguf.str(basename(resolve(adapterDir)))],
    ['adapter.type', gguf.str('lora')],
    ['adapter.lora.alpha', gguf.f32(lora.scaling * lora.r)],
    ['general.quantization_version', { type: GgufValueType.U32, value: 2 }],
  ]);
}

/** lora_a and lora_b of every adapted weight, as F32 or F16. */
export function ggufLoraTensors(config: LlamaConfig, lora: HostLora, type: 'F32' | 'F16'): Map<string, GgufTensorOut> {
  const { permute } = ggufArchitecture(config);
  const out = new Map<string, GgufTensorOut>();
  for (const [name, pair] of lora.pairs) {
    const target = renameWeight(name, 'hf', 'gguf');
    const heads = permute ? rotaryHeads(config, name) : null;
    const B = heads === null ? pair.B : permuteRotaryRows(pair.B, heads, config.headDim, lora.r, 'interleaved');
    out.set(`${target}.lora_a`, { type, shape: [lora.r, pair.inFeatures], load: () => encode(pair.A, type) });
    out.set(`${target}.lora_b`, { type, shape: [pair.outFeatures, lora.r], load: () => encode(B, type) });
  }
  return out;
}
