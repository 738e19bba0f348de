// The model's shape and hyper-parameters as a typed, frozen object built from a HF config.json (llama,
// mistral and qwen2, transformers 4 and 5 layouts). Unknown keys are ignored; a missing required key or
// an unsupported feature is a UserError naming the file and the key. The one home of the config type for
// model/ and formats/ alike. Not the weights, not the rope math (model/rope.ts).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { checkFolder } from '../util/check-folder.ts';
import { deepFreeze, isObject } from '../util/json-object.ts';

export type ModelType = 'llama' | 'mistral' | 'qwen2';

export type RopeScaling =
  | null
  | { readonly type: 'linear'; readonly factor: number }
  | { readonly type: 'dynamic'; readonly factor: number; readonly originalMaxPositions: number }
  | {
      readonly type: 'llama3';
      readonly factor: number;
      readonly lowFreqFactor: number;
      readonly highFreqFactor: number;
      readonly originalMaxPositions: number;
    };

/** Which linear layers carry a bias: q/k/v/o projections, and the MLP's three. */
export interface Biases {
  readonly q: boolean;
  readonly k: boolean;
  readonly v: boolean;
  readonly o: boolean;
  readonly mlp: boolean;
}

export interface LlamaConfig {
  readonly modelType: ModelType;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling;
  readonly maxPositionEmbeddings: number;
  readonly tieWordEmbeddings: boolean;
  readonly biases: Biases;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | readonly number[] | null;
  readonly padTokenId: number | null;
  readonly torchDtype: string | null;
}

/** transformers' class defaults for the keys a config.json may leave out. */
const DEFAULTS: Readonly<Record<ModelType, { maxPositions: number; bos: number | null; eos: number | null }>> = {
  llama: { maxPositions: 2048, bos: 1, eos: 2 },
  mistral: { maxPositions: 4096 * 32, bos: 1, eos: 2 },
  qwen2: { maxPositions: 32768, bos: null, eos: null },
};

/** Reads `<dir>/config.json`; `flag` names how the folder was given (e.g. "--base_model"). */
export function loadLlamaConfig(dir: string, options: { flag?: string } = {}): LlamaConfig {
  const label = options.flag ? `${options.flag} ${dir}` : dir;
  checkFolder(dir, label);
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new UserError(`${label} has no config.json: pass the folder that holds config.json and the *.safetensors files`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UserError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  return parseLlamaConfig(json, path);
}

export function parseLlamaConfig(json: unknown, sourcePath: string): LlamaConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new UserError(`${sourcePath} is not a JSON object`);
  const r = new Reader(json as Record<string, unknown>, sourcePath);
  const modelType = r.modelType();
  const defaults = DEFAULTS[modelType];
  const hiddenSize = r.positiveInt('hidden_size');
  const numHeads = r.positiveInt('num_attention_heads');
  const numKvHeads = r.positiveInt('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads) r.fail(`num_attention_heads (${numHeads}) is not a multiple of num_key_value_heads (${numKvHeads})`);
  if (r.get('head_dim') == null && hiddenSize % numHeads) r.fail(`hidden_size (${hiddenSize}) is not a multiple of num_attention_heads (${numHeads})`);
  const headDim = r.positiveInt('head_dim', hiddenSize / numHeads);
  if (headDim % 2) r.fail(`head_dim ${headDim} is odd; rotary embeddings need an even head size`);
  const hiddenAct = r.get('hidden_act') ?? 'silu';
  if (hiddenAct !== 'silu') r.fail(`hidden_act ${JSON.stringify(hiddenAct)} is not supported (only silu)`);
  const maxPositionEmbeddings = r.positiveInt('max_position_embeddings', defaults.maxPositions);
  checkNoSlidingWindow(r, modelType, maxPositionEmbeddings);
  const { ropeTheta, ropeScaling } = parseRope(r, maxPositionEmbeddings);
  const config: LlamaConfig = {
    modelType,
    vocabSize: r.positiveInt('vocab_size'),
    hiddenSize,
    intermediateSize: r.positiveInt('intermediate_size'),
    numLayers: r.positiveInt('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: r.positiveNumber('rms_norm_eps', 1e-6),
    ropeTheta,
    ropeScaling,
    maxPositionEmbeddings,
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    biases: parseBiases(r, modelType),
    bosTokenId: r.tokenId('bos_token_id', defaults.bos),
    eosTokenId: r.eosTokenId(defaults.eos),
    padTokenId: r.tokenId('pad_token_id', null),
    torchDtype: r.dtypeName(),
  };
  return deepFreeze(config);
}

function parseBiases(r: Reader, modelType: ModelType): Biases {
  if (modelType === 'qwen2') return { q: true, k: true, v: true, o: false, mlp: false };
  if (modelType === 'mistral') return { q: false, k: false, v: false, o: false, mlp: false };
  const attention = r.bool('attention_bias', false);
  return { q: attention, k: attention, v: attention, o: attention, mlp: r.bool('mlp_bias', false) };
}

function checkNoSlidingWindow(r: Reader, modelType: ModelType, maxPositions: number): void {
  if (modelType === 'qwen2' && r.bool('use_sliding_window', false)) {
    r.fail('use_sliding_window is true: sliding-window attention is not supported');
  }
  if (modelType === 'mistral') {
    const window = r.has('sliding_window') ? r.get('sliding_window') : 4096; // MistralConfig's default
    if (window !== null && !(typeof window === 'number' && window >= maxPositions)) {
      r.fail(`sliding_window ${JSON.stringify(window)} is below max_position_embeddings (${maxPositions}): sliding-window attention is not supported`);
    }
  }
}

/** rope_theta/rope_scaling at the top level (transformers 4) or inside rope_parameters (transformers 5). */
function parseRope(r: Reader, maxPositions: number): { ropeTheta: number; ropeScaling: RopeScaling } {
  const nested = r.get('rope_parameters');
  const params = isObject(nested) ? nested : isObject(r.get('rope_scaling')) ? (r.get('rope_scaling') as Record<string, unknown>) : {};
  const key = isObject(nested) ? 'rope_parameters' : 'rope_scaling';
  if (isObject(nested) && !['rope_type', 'type', 'rope_theta'].some((k) => k in nested)) {
    r.fail('rope_parameters has none of rope_type, rope_theta: per-layer-type rope parameters are not supported');
  }
  const theta = params.rope_theta ?? r.get('rope_theta') ?? 10000;
  if (typeof theta !== 'number' || !(theta > 0)) r.fail(`rope_theta ${JSON.stringify(theta)} is not a positive number`);
  const partial = params.partial_rotary_factor ?? r.get('partial_rotary_factor') ?? 1;
  if (partial !== 1) r.fail(`partial_rotary_factor ${JSON.stringify(partial)} is not supported (only 1)`);
  const type = params.rope_type ?? params.type ?? 'default';
  const field = (name: string): number => {
    const v = params[name];
    if (typeof v !== 'number' || !(v > 0)) r.fail(`${key}.${name} must be a positive number for rope type ${type}, got ${JSON.stringify(v)}`);
    return v as number;
  };
  let ropeScaling: RopeScaling;
  switch (type) {
    case 'default': ropeScaling = null; break;
    case 'linear': ropeScaling = { type: 'linear', factor: field('factor') }; break;
    case 'dynamic': ropeScaling = { type: 'dynamic', factor: field('factor'), originalMaxPositions: maxPositions }; break; // transformers uses max_position_embeddings
    case 'llama3':
      ropeScaling = {
        type: 'llama3',
        factor: field('factor'),
        lowFreqFactor: field('low_freq_factor'),
        highFreqFactor: field('high_freq_factor'),
        originalMaxPositions: field('original_max_position_embeddings'),
      };
      break;
    default:
      return r.fail(`${key}: rope type ${JSON.stringify(type)} is not supported (supported: default, linear, dynamic, llama3)`);
  }
  return { ropeTheta: theta as number, ropeScaling };
}

class Reader {
  constructor(
    private readonly json: Record<string, unknown>,
    private readonly path: string,
  ) {}

  has(key: string): boolean {
    return Object.hasOwn(this.json, key);
  }

  get(key: string): unknown {
    return this.has(key) ? this.json[key] : undefined;
  }

  fail(what: string): never {
    throw new UserError(`${this.path}: ${what}`);
  }

  /** A value that must be present (when no default is given) and non-null. */
  private value(key: string, fallback?: unknown): unknown {
    const v = this.get(key);
    if (v != null) return v;
    if (fallback !== undefined) return fallback;
    return this.fail(`"${key}" is missing: a LLaMA config.json needs it`);
  }

  modelType(): ModelType {
    const t = this.value('model_type');
    if (t !== 'llama' && t !== 'mistral' && t !== 'qwen2') {
      this.fail(`model_type ${JSON.stringify(t)} is not supported (supported: llama, mistral, qwen2)`);
    }
    return t as ModelType;
  }

  positiveInt(key: string, fallback?: number): number {
    const v = this.value(key, fallback);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) this.fail(`"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  }

  positiveNumber(key: string, fallback: number): number {
    const v = this.value(key, fallback);
    if (typeof v !== 'number' || !(v > 0)) this.fail(`"${key}" must be a positive number, got ${JSON.stringify(v)}`);
    return v as number;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.value(key, fallback);
    if (typeof v !== 'boolean') this.fail(`"${key}" must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  }

  /** A token id; a negative one (old configs write pad_token_id -1) means none. */
  tokenId(key: string, fallback: number | null): number | null {
    const v = this.has(key) ? this.get(key) : fallback;
    if (v === null) return null;
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(`"${key}" must be an integer or null, got ${JSON.stringify(v)}`);
    return (v as number) < 0 ? null : (v as number);
  }

  eosTokenId(fallback: number | null): number | number[] | null {
    const v = this.get('eos_token_id');
    if (!Array.isArray(v)) return this.tokenId('eos_token_id', fallback);
    if (!v.every((x) => Number.isSafeInteger(x) && x >= 0)) this.fail(`"eos_token_id" must be an integer or a list of them, got ${JSON.stringify(v)}`);
    return [...(v as number[])];
  }

  /** `dtype` in transformers 5, `torch_dtype` before. */
  dtypeName(): string | null {
    const v = this.get('dtype') ?? this.get('torch_dtype') ?? null;
    return typeof v === 'string' ? v : null;
  }
}
