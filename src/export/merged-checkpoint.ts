// A base checkpoint with a LoRA adapter merged in, read tensor by tensor: each read takes one base tensor,
// adds the adapter's delta in float32 and casts, so an export never holds more than one weight. A base whose
// linears are quantized (stored so, or asked for on load) is merged into their dequantized weights, as PEFT's
// merge_and_unload does on a 4-bit model. Not a writer (see export-hf.ts, export-gguf.ts) nor the checks (verify.ts).

import { loadLlamaConfig, type LlamaConfig } from '../arch/llama-config.ts';
import type { BnbConfig } from '../formats/bnb-config.ts';
import type { CheckpointReader } from '../formats/hf-checkpoint.ts';
import { fromFloat32, toFloat32, type HostTensor, type StorageDType } from '../formats/host-tensor.ts';
import type { TensorInfo } from '../formats/safetensors.ts';
import { checkCheckpointWeights, expectedWeights } from '../formats/weight-names.ts';
import { describeConfig, openQuantizedBase, type BaseQuantization } from '../model/quantized-base.ts';
import { withMeanRows } from '../model/resize-vocab.ts';
import { hasTokenizer } from '../tokenizer/load.ts';
import { mergePair, readHostLora, type HostLora } from './host-lora.ts';

export interface MergedCheckpoint {
  readonly dir: string;
  /** The base's config, with the adapter's vocabulary when it added tokens. */
  readonly config: LlamaConfig;
  /** Where the export's tokenizer files come from: the adapter folder when it holds a tokenizer (one trained with new tokens does), else the base. */
  readonly tokenizerDir: string;
  readonly lora: HostLora | null;
  /** How the base's linears are quantized; their base values are then the dequantized ones. */
  readonly quantization: BaseQuantization | null;
  /** The weights the config implies, HF names in HF order (no lm_head when embeddings are tied). */
  readonly names: readonly string[];
  /** The base tensor's stored dtype and shape. */
  info(name: string): TensorInfo;
  isAdapted(name: string): boolean;
  /** The base tensor as stored (a quantized linear: dequantized). */
  readBase(name: string): HostTensor;
  /** The base with the adapter merged in, as float32. */
  readFloat32(name: string): Float32Array;
  /** The merged tensor stored as `dtype` (default: the base's); an unadapted tensor in its own dtype keeps its bytes. */
  read(name: string, dtype?: StorageDType): HostTensor;
  close(): void;
}

export interface OpenMergedOptions {
  /** The PEFT adapter folder to merge; none gives the base itself. */
  loraWeights?: string;
  /** Flag names for messages. */
  baseFlag?: string;
  /** Quantize the base's decoder linears as on load (then merge into their dequantized values); a base stored quantized is used as it is. */
  quantize?: BnbConfig | null;
}

/** Opens `baseDir` (config.json + weights) and the adapter, checking both before any tensor is read. */
export async function openMerged(baseDir: string, options: OpenMergedOptions = {}): Promise<MergedCheckpoint> {
  const flag = options.baseFlag ?? '--base_model';
  const config = loadLlamaConfig(baseDir, { flag });
  const lora = options.loraWeights ? readHostLora(options.loraWeights, config) : null;
  const reader = await openQuantizedBase(baseDir, options.quantize ?? null, { flag });
  try {
    checkCheckpointWeights(reader, config, baseDir);
  } catch (err) {
    reader.close();
    throw err;
  }
  const tokenizerDir = options.loraWeights && hasTokenizer(options.loraWeights) ? options.loraWeights : baseDir;
  return new Merged(baseDir, config, lora, reader.quantization, reader, tokenizerDir);
}

const VOCAB_WEIGHTS = new Set(['model.embed_tokens.weight', 'lm_head.weight']);

/** The one sentence an export prints for a quantized base; null for a 16/32-bit one. */
export function mergeNote(merged: MergedCheckpoint): string | null {
  const q = merged.quantization;
  if (!q) return null;
  const how = q.source === 'checkpoint' ? 'stored' : 'quantized on load';
  return `the base's ${q.names.length} decoder linears are ${describeConfig(q.config)}, ${how}: the export holds their dequantized weights` +
    `${merged.lora ? ' with the adapter merged in (as PEFT\'s merge_and_unload on a quantized model)' : ''}, not a quantized checkpoint`;
}

class Merged implements MergedCheckpoint {
  readonly names: readonly string[];
  readonly config: LlamaConfig;
  private readonly baseVocab: number;

  constructor(
    readonly dir: string,
    baseConfig: LlamaConfig,
    readonly lora: HostLora | null,
    readonly quantization: BaseQuantization | null,
    private readonly reader: CheckpointReader,
    readonly tokenizerDir: string,
  ) {
    this.baseVocab = baseConfig.vocabSize;
    this.config = lora && lora.vocabSize > baseConfig.vocabSize ? Object.freeze({ ...baseConfig, vocabSize: lora.vocabSize }) : baseConfig;
    this.names = expectedWeights(this.config).map((w) => w.name);
  }

  /** Whether `name` is the embedding or head of a vocabulary the adapter grew. */
  private grown(name: string): boolean {
    return this.config.vocabSize > this.baseVocab && VOCAB_WEIGHTS.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.reader.info(name);
    return this.grown(name) ? { ...info, shape: [this.config.vocabSize, ...info.shape.slice(1)] } : info;
  }

  isAdapted(name: string): boolean {
    return (this.lora?.pairs.has(name) || this.lora?.modules.has(name)) ?? false;
  }

  /** A grown vocabulary's embedding or head: the base's rows and the new ones as resize_token_embeddings sets them. */
  readBase(name: string): HostTensor {
    const base = this.reader.read(name);
    if (!this.grown(name)) return base;
    return fromFloat32(withMeanRows(toFloat32(base), this.baseVocab, this.config.hiddenSize, this.config.vocabSize), this.info(name).shape, base.dtype);
  }

  readFloat32(name: string): Float32Array {
    const module = this.lora?.modules.get(name);
    if (module) return toFloat32(module); // modules_to_save: the adapter's copy replaces the module
    const base = this.readBase(name);
    const pair = this.lora?.pairs.get(name);
    if (!pair) return base.dtype === 'F32' ? (base.data as Float32Array) : toFloat32(base);
    const w = base.dtype === 'F32' ? new Float32Array(base.data as Float32Array) : toFloat32(base);
    mergePair(this.lora!, pair, w);
    return w;
  }

  read(name: string, dtype?: StorageDType): HostTensor {
    const info = this.info(name);
    const target = dtype ?? info.dtype;
    if (!this.isAdapted(name) && target === info.dtype) return this.readBase(name);
    return fromFloat32(this.readFloat32(name), info.shape, target);
  }

  close(): void {
    this.reader.close();
  }
}
