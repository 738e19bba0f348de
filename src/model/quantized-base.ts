// A base model's weights when its decoder linears (q/k/v/o/gate/up/down) are, or are to be, quantized the
// bitsandbytes way: stored quantized (used as it is) or quantized on load from a 16/32-bit checkpoint as
// transformers' load_in_4bit / load_in_8bit does; embeddings, norms and lm_head stay as stored. A reader, one
// tensor at a time, so no second copy of the model exists; not the upload (load.ts) nor the math (formats/bnb-*).

import { PROJECTION_INFO, PROJECTIONS } from '../arch/projections.ts';
import { nativeQuantizers } from '../backends/native/cpu-quantize.ts';
import { dequantize, type QuantizedWeight } from '../engine/quantized.ts';
import { UserError } from '../errors.ts';
import { quantize4bit } from '../formats/bnb-4bit.ts';
import { openBnbCheckpoint, type BnbCheckpointReader, type LinearWeight } from '../formats/bnb-checkpoint.ts';
import type { BnbConfig } from '../formats/bnb-config.ts';
import { quantizeInt8Rows } from '../formats/bnb-int8.ts';
import type { CheckpointReader } from '../formats/hf-checkpoint.ts';
import { fromFloat32, toFloat32, type HostTensor, type StorageDType } from '../formats/host-tensor.ts';
import type { TensorInfo } from '../formats/safetensors.ts';

export interface BaseQuantization {
  readonly config: BnbConfig;
  /** 'checkpoint': stored quantized; 'load': quantized as it was read. */
  readonly source: 'checkpoint' | 'load';
  /** The `weight` names of the quantized linears. */
  readonly names: readonly string[];
  /** A quantization asked for but not applied, because the checkpoint is stored quantized. */
  readonly ignored: BnbConfig | null;
}

export interface QuantizedBase extends CheckpointReader {
  readonly quantization: BaseQuantization | null;
  /** A quantized linear's weight as QuantizedWeight; any other tensor as read() gives it. */
  readWeight(name: string): LinearWeight;
  /** read() and info(): a quantized linear dequantized, 4-bit to the dtype it was quantized from, 8-bit to the model's. */
}

export interface OpenBaseOptions {
  /** How the folder was given, for messages. */
  flag?: string;
  /** The dtype weights are loaded in: a linear quantized on load is quantized from its values in this dtype. */
  dtype?: 'F32' | 'BF16' | 'F16';
}

const ENGINE_DTYPES: Readonly<Partial<Record<StorageDType, 'f32' | 'bf16' | 'f16'>>> = { F32: 'f32', BF16: 'bf16', F16: 'f16' };
const LINEAR = new RegExp(`^model\\.layers\\.\\d+\\.(self_attn|mlp)\\.(${PROJECTIONS.join('|')})\\.weight$`);

/** Whether `name` is a decoder linear's weight (model.layers.N.self_attn.q_proj.weight, …). */
export function isDecoderLinear(name: string): boolean {
  const m = LINEAR.exec(name);
  return m !== null && PROJECTION_INFO[m[2] as keyof typeof PROJECTION_INFO].block === m[1];
}

/** transformers' llm_int8_skip_modules match: the entry's dot-separated parts appear whole in the module's name. */
export function isSkipped(moduleName: string, skipModules: readonly string[] | null): boolean {
  return (skipModules ?? []).some((s) => `.${moduleName}.`.includes(`.${s}.`));
}

/**
 * Opens `dir` with its decoder linears quantized: as stored when the checkpoint is quantized (a `request` is
 * then ignored, and reported so), else as `request` asks, on load. Without either, a plain reader.
 */
export async function openQuantizedBase(dir: string, request: BnbConfig | null, options: OpenBaseOptions = {}): Promise<QuantizedBase> {
  const reader = await openBnbCheckpoint(dir, { flag: options.flag });
  try {
    const stored = reader.quantizedNames();
    if (stored.length > 0) {
      if (!reader.quantization) throw new UserError(`${dir}/config.json has no quantization_config, but its weights are quantized by bitsandbytes (e.g. ${stored[0]}): save the model again with transformers`);
      return new Base(reader, { config: reader.quantization, source: 'checkpoint', names: stored, ignored: request }, null);
    }
    if (!request) return new Base(reader, null, null);
    checkSkipModules(reader, request.skipModules, dir);
    const names = reader.names().filter((n) => isDecoderLinear(n) && !isSkipped(n.slice(0, -'.weight'.length), request.skipModules));
    return new Base(reader, { config: request, source: 'load', names, ignored: null }, options.dtype ?? null);
  } catch (err) {
    reader.close();
    throw err;
  }
}

/** One line on the base's linears, e.g. "14 decoder linears 4-bit nf4 with double quant (compute dtype bfloat16), quantized on load". */
export function describeQuantization(q: BaseQuantization): string {
  const how = q.source === 'checkpoint' ? 'as stored in the checkpoint' : 'quantized on load';
  const line = `${q.names.length} decoder linears ${describeConfig(q.config)}, ${how}`;
  return q.ignored ? `${line} (the checkpoint is already quantized: the ${describeConfig(q.ignored)} asked for is not applied)` : line;
}

export function describeConfig(c: BnbConfig): string {
  if (c.bits === 8) return `8-bit LLM.int8 (outlier threshold ${c.threshold})`;
  return `4-bit ${c.quantType}${c.doubleQuant ? ' with double quant' : ''} (compute dtype ${c.computeDtype})`;
}

/** The quantization as transformers writes it in config.json (plus where it came from), for run records. */
export function quantizationRecord(q: BaseQuantization | null | undefined): Record<string, unknown> | null {
  if (!q) return null;
  const c = q.config;
  const common = { quant_method: 'bitsandbytes', load_in_4bit: c.bits === 4, load_in_8bit: c.bits === 8, llm_int8_skip_modules: c.skipModules };
  const bits = c.bits === 4
    ? { bnb_4bit_quant_type: c.quantType, bnb_4bit_use_double_quant: c.doubleQuant, bnb_4bit_compute_dtype: c.computeDtype }
    : { llm_int8_threshold: c.threshold };
  return { ...common, ...bits, source: q.source, quantized_linears: q.names.length };
}

/** Every skip entry must name some module of the checkpoint: a misspelt one would quietly quantize it. */
function checkSkipModules(reader: CheckpointReader, skip: readonly string[] | null, dir: string): void {
  const modules = [...new Set(reader.names().map((n) => n.slice(0, n.lastIndexOf('.'))))];
  for (const s of skip ?? []) {
    if (!modules.some((m) => isSkipped(m, [s]))) {
      throw new UserError(`--llm_int8_skip_modules: "${s}" names no module of ${dir} (e.g. q_proj, mlp, self_attn, model.layers.0, lm_head)`);
    }
  }
}

class Base implements QuantizedBase {
  readonly dir: string;
  readonly source: string;
  private readonly quantized: ReadonlySet<string>;

  constructor(
    private readonly reader: BnbCheckpointReader,
    readonly quantization: BaseQuantization | null,
    private readonly loadDtype: StorageDType | null, // set when quantizing on load
  ) {
    this.dir = reader.dir;
    this.source = reader.source;
    this.quantized = new Set(quantization?.names ?? []);
  }

  names(): string[] {
    return this.reader.names();
  }

  info(name: string): TensorInfo {
    const info = this.reader.info(name);
    return this.quantized.has(name) ? { dtype: this.dequantizedDtype(name), shape: info.shape } : info;
  }

  read(name: string): HostTensor {
    if (!this.quantized.has(name)) return this.reader.read(name);
    const w = this.readWeight(name) as QuantizedWeight;
    const values = dequantize(w);
    return fromFloat32(values, [...w.shape], this.dequantizedDtype(name));
  }

  readWeight(name: string): LinearWeight {
    const config = this.quantization?.config;
    if (!config || this.quantization!.source === 'checkpoint' || !this.quantized.has(name)) return this.reader.readWeight(name);
    const h = this.reader.read(name);
    const shape = [h.shape[0]!, h.shape[1]!] as const;
    const dtype = this.loadDtype ?? h.dtype;
    const values = dtype === h.dtype ? toFloat32(h) : toFloat32(fromFloat32(toFloat32(h), h.shape, dtype));
    const native = nativeQuantizers(); // host work: whatever backend the model goes to
    if (config.bits === 8) return quantizeInt8Rows(values, shape, config.threshold, native?.int8Rows);
    const quantDtype = ENGINE_DTYPES[dtype];
    if (!quantDtype) throw new UserError(`weight ${name} has dtype ${dtype}; expected F32, BF16 or F16 to quantize it to 4 bits`);
    return quantize4bit(values, shape, config.quantType, 64, config.doubleQuant, quantDtype, native?.blocks4bit);
  }

  close(): void {
    this.reader.close();
  }

  /** 4-bit: the dtype quantized from (bitsandbytes' quant_state dtype); 8-bit: the model's (its embeddings'), as transformers' dequantize gives. */
  private dequantizedDtype(name: string): StorageDType {
    const stored = this.reader.info(name).dtype;
    if (this.quantization!.source === 'load') return this.loadDtype ?? stored;
    return this.quantization!.config.bits === 4 ? stored : this.reader.info('model.embed_tokens.weight').dtype;
  }
}
