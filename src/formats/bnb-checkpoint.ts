// Reading a checkpoint saved already quantized by transformers + bitsandbytes. A 4-bit linear is stored as
// `weight` (packed uint8), `weight.absmax`, `weight.quant_map`, ± `weight.nested_absmax`/`nested_quant_map`, and
// `weight.quant_state.bitsandbytes__nf4|fp4` (JSON bytes); an 8-bit one as `weight` (int8), `SCB`, `weight_format`.
// This reader shows each such linear once, under its `weight` name, and hides the side tensors. Not the math (bnb-4bit.ts, bnb-int8.ts).

import { join } from 'node:path';
import { PROJECTION_INFO, PROJECTIONS } from '../arch/projections.ts';
import { UserError } from '../errors.ts';
import { BLOCKSIZES_4BIT } from './bnb-4bit.ts';
import { code4bit, dequantize, type QuantizedWeight } from '../engine/quantized.ts';
import { loadQuantizationConfig, type BnbConfig } from './bnb-config.ts';
import { openCheckpoint, type CheckpointReader, type OpenOptions } from './hf-checkpoint.ts';
import { fromFloat32, type HostTensor, type StorageDType } from './host-tensor.ts';
import type { TensorInfo } from './safetensors.ts';

/** A linear's weight as the checkpoint holds it. */
export type LinearWeight = HostTensor | QuantizedWeight;

export function isQuantized(w: LinearWeight): w is QuantizedWeight {
  return 'type' in w;
}

export interface BnbCheckpointReader extends CheckpointReader {
  /** config.json's quantization_config; null when it has none. */
  readonly quantization: BnbConfig | null;
  /** The `weight` names of the quantized linears. */
  quantizedNames(): string[];
  /** A weight as stored: quantized linears as QuantizedWeight, every other tensor as read(). */
  readWeight(name: string): LinearWeight;
}

const SIDE_4BIT = ['absmax', 'quant_map', 'nested_absmax', 'nested_quant_map', 'quant_state.bitsandbytes__nf4', 'quant_state.bitsandbytes__fp4'];
const QUANT_STATE = /^(.+\.weight)\.quant_state\.bitsandbytes__(nf4|fp4)$/;
const SCB = /^(.+)\.SCB$/;
const STATE_DTYPES: Readonly<Record<string, StorageDType>> = { float32: 'F32', bfloat16: 'BF16', float16: 'F16' };
const ENGINE_DTYPES = { F32: 'f32', BF16: 'bf16', F16: 'f16' } as const;

/** What a quantized weight is stored as: its kind, shape, and the dtype bitsandbytes dequantizes it to. */
interface Entry {
  bits: 4 | 8;
  shape: [number, number];
  dtype: StorageDType;
  state: QuantState | null; // 4-bit only
  nested: boolean; // 4-bit absmax double-quantized
}

interface QuantState {
  quant_type: 'nf4' | 'fp4';
  blocksize: number;
  nested_blocksize?: number;
  nested_offset?: number;
}

/**
 * Opens a model folder like openCheckpoint, refusing a quantization_config other than bitsandbytes'. The sizes
 * of every quantized tensor are checked against its shape here; the data is read on demand.
 */
export async function openBnbCheckpoint(dir: string, options: OpenOptions = {}): Promise<BnbCheckpointReader> {
  const quantization = loadQuantizationConfig(dir);
  const reader = await openCheckpoint(dir, options);
  try {
    return new BnbCheckpoint(reader, quantization, findQuantized(reader));
  } catch (err) {
    reader.close();
    throw err;
  }
}

/** Every decoder linear's weight (`model.layers.N.{self_attn,mlp}.X_proj.weight`) as stored. Small models only: all in memory. */
export async function readQuantizedLinears(dir: string): Promise<Map<string, LinearWeight>> {
  const reader = await openBnbCheckpoint(dir);
  try {
    const linears = new Map<string, LinearWeight>();
    const pattern = new RegExp(`^model\\.layers\\.\\d+\\.(self_attn|mlp)\\.(${PROJECTIONS.join('|')})\\.weight$`);
    for (const name of reader.names()) {
      const m = pattern.exec(name);
      if (m && PROJECTION_INFO[m[2] as keyof typeof PROJECTION_INFO].block === m[1]) linears.set(name, reader.readWeight(name));
    }
    return linears;
  } finally {
    reader.close();
  }
}

function findQuantized(reader: CheckpointReader): Map<string, Entry> {
  const file = join(reader.dir, reader.source);
  const present = new Set(reader.names());
  const entries = new Map<string, Entry>();
  for (const key of present) {
    const m4 = QUANT_STATE.exec(key);
    if (m4) entries.set(m4[1]!, check4bit(reader, present, m4[1]!, key, m4[2] as 'nf4' | 'fp4', file));
    const m8 = SCB.exec(key);
    if (m8) entries.set(`${m8[1]}.weight`, check8bit(reader, present, m8[1]!, file));
  }
  return entries;
}

function check4bit(reader: CheckpointReader, present: ReadonlySet<string>, name: string, stateKey: string, keyType: 'nf4' | 'fp4', file: string): Entry {
  const bad = (what: string): never => {
    throw new UserError(`${file}: ${name} ${what}: the checkpoint is damaged or not saved by bitsandbytes`);
  };
  const state = parseState(reader.read(stateKey), stateKey, file);
  if (state.quant_type !== keyType) bad(`has quant_type ${JSON.stringify(state.quant_type)} in ${stateKey}`);
  if (!BLOCKSIZES_4BIT.includes(state.blocksize)) bad(`has blocksize ${JSON.stringify(state.blocksize)} (bitsandbytes uses ${BLOCKSIZES_4BIT.join(', ')})`);
  const dtype = Object.hasOwn(STATE_DTYPES, String(state.dtype)) ? STATE_DTYPES[String(state.dtype)]! : bad(`has dtype ${JSON.stringify(state.dtype)} (float32, bfloat16 or float16)`);
  const shape = state.shape;
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) bad(`has shape ${JSON.stringify(shape)}; a linear weight is (out, in)`);
  const [OC, C] = shape as [number, number];
  const weight = reader.info(name);
  if (weight.dtype !== 'U8') {
    throw new UserError(`${file}: ${name} is stored as ${weight.dtype}; 4-bit weights are read from uint8 storage only (bnb_4bit_quant_storage uint8)`);
  }
  const blocks = Math.ceil((OC * C) / state.blocksize);
  expectSize(reader, present, name, 'U8', Math.ceil((OC * C) / 2), `packed bytes for shape [${OC}, ${C}]`, file);
  const map = reader.read(`${name}.quant_map`);
  const table = code4bit(state.quant_type);
  if (map.dtype !== 'F32' || map.data.length !== 16 || !table.every((v, i) => v === map.data[i])) bad(`has a quant_map that is not bitsandbytes' ${state.quant_type} table`);
  const nested = present.has(`${name}.nested_absmax`);
  expectSize(reader, present, `${name}.absmax`, nested ? 'U8' : 'F32', blocks, `blocks of ${state.blocksize} in [${OC}, ${C}]`, file);
  if (nested) {
    const nb = state.nested_blocksize;
    if (!Number.isSafeInteger(nb) || nb! <= 0) bad(`has nested_blocksize ${JSON.stringify(nb)}`);
    if (typeof state.nested_offset !== 'number') bad(`has nested_offset ${JSON.stringify(state.nested_offset)}, not a number`);
    expectSize(reader, present, `${name}.nested_absmax`, 'F32', Math.ceil(blocks / nb!), `nested blocks of ${nb} over ${blocks} absmax`, file);
    expectSize(reader, present, `${name}.nested_quant_map`, 'F32', 256, 'values of the dynamic map', file);
  }
  return { bits: 4, shape: [OC, C], dtype, state, nested };
}

function check8bit(reader: CheckpointReader, present: ReadonlySet<string>, base: string, file: string): Entry {
  const name = `${base}.weight`;
  if (!present.has(name)) throw new UserError(`${file} holds ${base}.SCB but no ${name}`);
  const w = reader.info(name);
  if (w.dtype !== 'I8' || w.shape.length !== 2) throw new UserError(`${file}: ${name} is ${w.dtype} [${w.shape.join(', ')}] beside ${base}.SCB; an 8-bit weight is int8 (out, in)`);
  expectSize(reader, present, `${base}.SCB`, 'F32', w.shape[0]!, `rows of ${name} [${w.shape.join(', ')}]`, file);
  if (present.has(`${base}.weight_format`)) {
    const format = reader.read(`${base}.weight_format`).data[0];
    if (format !== 0) throw new UserError(`${file}: ${base}.weight_format is ${format}; only 0 (row-major int8, what bitsandbytes saves) is supported`);
  }
  return { bits: 8, shape: [w.shape[0]!, w.shape[1]!], dtype: 'F32', state: null, nested: false };
}

function parseState(bytes: HostTensor, key: string, file: string): QuantState & Record<string, unknown> {
  try {
    const state = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.data as Uint8Array));
    if (typeof state === 'object' && state !== null && !Array.isArray(state)) return state;
  } catch {
    // reported below
  }
  throw new UserError(`${file}: ${key} is not the UTF-8 JSON object bitsandbytes writes there`);
}

function expectSize(reader: CheckpointReader, present: ReadonlySet<string>, key: string, dtype: StorageDType, count: number, what: string, file: string): void {
  if (!present.has(key)) throw new UserError(`${file} has no ${key}, which a bitsandbytes-quantized weight needs`);
  const info = reader.info(key);
  const n = info.shape.reduce((a, b) => a * b, 1);
  if (info.dtype !== dtype || n !== count) {
    throw new UserError(`${file}: ${key} is ${info.dtype} [${info.shape.join(', ')}], expected ${count} ${dtype} (${what})`);
  }
}

class BnbCheckpoint implements BnbCheckpointReader {
  readonly dir: string;
  readonly source: string;

  constructor(
    private readonly reader: CheckpointReader,
    readonly quantization: BnbConfig | null,
    private readonly quantized: ReadonlyMap<string, Entry>,
  ) {
    this.dir = reader.dir;
    this.source = reader.source;
  }

  names(): string[] {
    const side = new Set<string>();
    for (const [name, e] of this.quantized) {
      if (e.bits === 4) for (const s of SIDE_4BIT) side.add(`${name}.${s}`);
      else for (const s of ['SCB', 'weight_format']) side.add(`${name.slice(0, -'weight'.length)}${s}`);
    }
    return this.reader.names().filter((n) => !side.has(n));
  }

  quantizedNames(): string[] {
    return [...this.quantized.keys()];
  }

  /** A quantized weight reports its (out, in) shape and the dtype read() dequantizes it to. */
  info(name: string): TensorInfo {
    const e = this.quantized.get(name);
    return e ? { dtype: e.dtype, shape: [...e.shape] } : this.reader.info(name);
  }

  /** A quantized weight comes back dequantized as bitsandbytes does: 4-bit to its quant_state dtype, 8-bit to float32. */
  read(name: string): HostTensor {
    const w = this.readWeight(name);
    if (!isQuantized(w)) return w;
    const values = dequantize(w);
    return fromFloat32(values, [...w.shape], this.quantized.get(name)!.dtype);
  }

  readWeight(name: string): LinearWeight {
    const e = this.quantized.get(name);
    if (!e) return this.reader.read(name);
    const r = (key: string) => this.reader.read(key).data;
    if (e.bits === 8) {
      const threshold = this.quantization?.bits === 8 ? this.quantization.threshold : 6;
      return { type: 'int8', shape: e.shape, weight: r(name) as Int8Array, scb: r(`${name.slice(0, -'weight'.length)}SCB`) as Float32Array, threshold };
    }
    const s = e.state!;
    const absmax = e.nested
      ? {
          codes: r(`${name}.absmax`) as Uint8Array,
          nestedAbsmax: r(`${name}.nested_absmax`) as Float32Array,
          nestedMap: r(`${name}.nested_quant_map`) as Float32Array,
          nestedBlocksize: s.nested_blocksize!,
          offset: Math.fround(s.nested_offset!),
        }
      : (r(`${name}.absmax`) as Float32Array);
    const dtype = ENGINE_DTYPES[e.dtype as keyof typeof ENGINE_DTYPES];
    return { type: s.quant_type, shape: e.shape, blocksize: s.blocksize, packed: r(name) as Uint8Array, absmax, dtype };
  }

  close(): void {
    this.reader.close();
  }
}
