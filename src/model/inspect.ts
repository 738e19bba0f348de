// What a model folder holds, for `alpaca-lora inspect-model`: architecture and sizes (config.json), each tensor
// group's dtype or bitsandbytes quantization, the parameter count, bytes on disk, and the weights' estimated
// bytes in memory per backend, as stored and quantized on load. Reads headers and quant states, never weights.

import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadLlamaConfig, type LlamaConfig } from '../arch/llama-config.ts';
import type { BnbConfig } from '../formats/bnb-config.ts';
import { openCheckpoint, type CheckpointReader } from '../formats/hf-checkpoint.ts';
import { ITEM_SIZE, type StorageDType } from '../formats/host-tensor.ts';
import { checkCheckpointWeights, expectedWeights } from '../formats/weight-names.ts';
import { describeConfig, isDecoderLinear, isSkipped, openQuantizedBase } from './quantized-base.ts';

export type GroupName = 'embeddings' | 'attention' | 'mlp' | 'norms' | 'lm_head' | 'other';

export interface TensorGroup {
  name: GroupName;
  tensors: number;
  parameters: number;
  /** Each storage format in the group with how many tensors use it, e.g. "nf4 (blocksize 64, double quant) x8". */
  storedAs: string[];
  bytesOnDisk: number;
}

/** Estimated bytes of the weights alone on each backend; cuda null: it has no quantized kernels. */
export interface MemoryEstimate {
  format: string;
  js: number;
  cpu: number;
  cuda: number | null;
}

export interface ModelSummary {
  dir: string;
  architecture: string;
  modelType: string;
  layers: number;
  hiddenSize: number;
  intermediateSize: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocabSize: number;
  context: number;
  tiedEmbeddings: boolean;
  /** The checkpoint's own quantization, described; null when it is 16/32-bit. */
  quantization: string | null;
  /** A quantization asked for that does not apply: the checkpoint is stored quantized. */
  requestIgnored: boolean;
  parameters: number;
  groups: TensorGroup[];
  /** Weight files (safetensors or .bin, and an index) and their bytes. */
  files: { name: string; bytes: number }[];
  bytesOnDisk: number;
  memory: MemoryEstimate[];
}

type Format = { kind: 'dense'; dtype: StorageDType } | { kind: '4bit'; type: 'nf4' | 'fp4'; blocksize: number; doubleQuant: boolean } | { kind: 'int8' };

interface Weight {
  name: string;
  shape: number[];
  stored: Format;
}

const ON_LOAD_4BIT_BLOCKSIZE = 64; // bitsandbytes' default, what quantize-on-load uses

/**
 * Summarises `dir`. Memory rows: as stored, then for a 16/32-bit checkpoint each quantization on load — the one
 * `request` asks for, or without one load_in_8bit and load_in_4bit (nf4).
 */
export async function inspectModel(dir: string, request: BnbConfig | null = null): Promise<ModelSummary> {
  const config = loadLlamaConfig(dir);
  const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { architectures?: unknown };
  const base = await openQuantizedBase(dir, request); // checks request's skip modules against the checkpoint
  const raw = await openCheckpoint(dir);
  try {
    checkCheckpointWeights(base, config, dir);
    const stored = base.quantization?.source === 'checkpoint';
    const quantized = new Set(stored ? base.quantization!.names : []);
    const weights: Weight[] = expectedWeights(config).map(({ name, shape }) => ({ name, shape, stored: quantized.has(name) ? storedQuantized(raw, name) : { kind: 'dense', dtype: raw.info(name).dtype } }));
    const loads: BnbConfig[] = stored ? [] : request ? [request]
      : [{ bits: 8, threshold: 6, skipModules: null }, { bits: 4, quantType: 'nf4', doubleQuant: false, computeDtype: 'float32', skipModules: null }];
    const files = weightFiles(raw);
    return {
      dir,
      architecture: Array.isArray(json.architectures) ? String(json.architectures[0]) : 'LlamaForCausalLM',
      modelType: config.modelType,
      layers: config.numLayers,
      hiddenSize: config.hiddenSize,
      intermediateSize: config.intermediateSize,
      heads: config.numHeads,
      kvHeads: config.numKvHeads,
      headDim: config.headDim,
      vocabSize: config.vocabSize,
      context: config.maxPositionEmbeddings,
      tiedEmbeddings: config.tieWordEmbeddings,
      quantization: stored ? describeConfig(base.quantization!.config) : null,
      requestIgnored: stored && request !== null,
      parameters: weights.reduce((n, w) => n + count(w.shape), 0),
      groups: groups(weights, raw),
      files,
      bytesOnDisk: files.reduce((n, f) => n + f.bytes, 0),
      memory: [
        estimate('as stored', weights, (w) => w.stored),
        ...loads.map((q) => estimate(loadName(q), weights, (w) => onLoad(w, q))),
      ],
    };
  } finally {
    base.close();
    raw.close();
  }
}

/** The weights' estimated bytes per backend for a checkpoint of `config` stored densely in `stored`, quantized on load as `request` asks. */
export function estimateWeightMemory(config: LlamaConfig, stored: StorageDType, request: BnbConfig | null): MemoryEstimate {
  const weights: Weight[] = expectedWeights(config).map(({ name, shape }) => ({ name, shape, stored: { kind: 'dense', dtype: stored } }));
  return request ? estimate(loadName(request), weights, (w) => onLoad(w, request)) : estimate('as stored', weights, (w) => w.stored);
}

export function groupOf(name: string): GroupName {
  if (name.includes('embed_tokens')) return 'embeddings';
  if (name.startsWith('lm_head')) return 'lm_head';
  if (name.includes('.self_attn.')) return name.includes('rotary_emb') ? 'other' : 'attention';
  if (name.includes('.mlp.')) return 'mlp';
  if (/norm\.weight$/.test(name)) return 'norms';
  return 'other';
}

export function formatName(f: Format): string {
  if (f.kind === 'dense') return f.dtype.toLowerCase();
  if (f.kind === 'int8') return 'int8 (LLM.int8)';
  return `${f.type} (blocksize ${f.blocksize}${f.doubleQuant ? ', double quant' : ''})`;
}

/** A stored quantized linear's format, from its side tensors (the quant_state JSON is a few bytes). */
function storedQuantized(raw: CheckpointReader, name: string): Format {
  const names = new Set(raw.names());
  for (const type of ['nf4', 'fp4'] as const) {
    const key = `${name}.quant_state.bitsandbytes__${type}`;
    if (!names.has(key)) continue;
    const state = JSON.parse(new TextDecoder().decode(raw.read(key).data as Uint8Array)) as { blocksize: number };
    return { kind: '4bit', type, blocksize: state.blocksize, doubleQuant: names.has(`${name}.nested_absmax`) };
  }
  return { kind: 'int8' };
}

/** e.g. "load_in_4bit nf4 double quant, skipping mlp". */
function loadName(q: BnbConfig): string {
  const type = q.bits === 4 ? ` ${q.quantType}${q.doubleQuant ? ' double quant' : ''}` : '';
  return `load_in_${q.bits}bit${type}${q.skipModules?.length ? `, skipping ${q.skipModules.join(', ')}` : ''}`;
}

function onLoad(w: Weight, q: BnbConfig): Format {
  if (!isDecoderLinear(w.name) || isSkipped(w.name.slice(0, -'.weight'.length), q.skipModules)) return w.stored;
  return q.bits === 8 ? { kind: 'int8' } : { kind: '4bit', type: q.quantType, blocksize: ON_LOAD_4BIT_BLOCKSIZE, doubleQuant: q.doubleQuant };
}

/** Bytes of one weight in memory: dense as stored (js widens to float32), quantized parts as bitsandbytes keeps them. */
function memoryBytes(f: Format, shape: number[], backend: 'js' | 'cpu' | 'cuda'): number | null {
  const n = count(shape);
  if (f.kind === 'dense') return n * (backend === 'js' ? 4 : ITEM_SIZE[f.dtype]);
  if (backend === 'cuda') return null;
  if (f.kind === 'int8') return n + 4 * shape[0]!; // int8 weight + float32 row absmax
  const blocks = Math.ceil(n / f.blocksize);
  const absmax = f.doubleQuant ? blocks + 4 * Math.ceil(blocks / 256) + 4 * 256 : 4 * blocks; // codes, nested absmax, dynamic map
  return Math.ceil(n / 2) + absmax;
}

function estimate(format: string, weights: Weight[], formatOf: (w: Weight) => Format): MemoryEstimate {
  const sum = (backend: 'js' | 'cpu' | 'cuda') => {
    let total = 0;
    for (const w of weights) {
      const b = memoryBytes(formatOf(w), w.shape, backend);
      if (b === null) return null;
      total += b;
    }
    return total;
  };
  return { format, js: sum('js')!, cpu: sum('cpu')!, cuda: sum('cuda') };
}

function groups(weights: Weight[], raw: CheckpointReader): TensorGroup[] {
  const out = new Map<GroupName, TensorGroup & { formats: Map<string, number> }>();
  const group = (name: GroupName) => {
    let g = out.get(name);
    if (!g) out.set(name, (g = { name, tensors: 0, parameters: 0, storedAs: [], bytesOnDisk: 0, formats: new Map() }));
    return g;
  };
  for (const w of weights) {
    const g = group(groupOf(w.name));
    g.tensors++;
    g.parameters += count(w.shape);
    const f = formatName(w.stored);
    g.formats.set(f, (g.formats.get(f) ?? 0) + 1);
  }
  for (const name of raw.names()) {
    const info = raw.info(name);
    group(groupOf(name)).bytesOnDisk += count(info.shape) * ITEM_SIZE[info.dtype];
  }
  const order: GroupName[] = ['embeddings', 'attention', 'mlp', 'norms', 'lm_head', 'other'];
  return order.filter((n) => out.has(n)).map((n) => {
    const { formats, ...g } = out.get(n)!;
    return { ...g, storedAs: [...formats].map(([f, k]) => (formats.size > 1 ? `${f} x${k}` : f)) };
  });
}

/** The weight files: the single file, or the index and every shard it names. */
function weightFiles(raw: CheckpointReader): { name: string; bytes: number }[] {
  const names = [raw.source];
  if (raw.source.endsWith('.index.json')) {
    const index = JSON.parse(readFileSync(join(raw.dir, raw.source), 'utf8')) as { weight_map: Record<string, string> };
    names.push(...new Set(Object.values(index.weight_map)));
  }
  return names.map((name) => ({ name, bytes: statSync(join(raw.dir, name)).size }));
}

function count(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
