// PEFT LoRA adapter folders: adapter_config.json (read into a typed config, written back with the field set
// PEFT 0.21 writes) and adapter_model.safetensors / adapter_model.bin keyed by PEFT's file keys, plus the
// check that an adapter fits a base model. Not the LoRA math (model/lora.ts).

import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { LlamaConfig } from '../arch/llama-config.ts';
import { PROJECTIONS, PROJECTION_INFO, projectionFeatures, type Projection } from '../arch/projections.ts';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';
import type { HostTensor } from './host-tensor.ts';
import { pythonJson } from './python-json.ts';
import { readSafetensors } from './safetensors.ts';
import { writeSafetensors } from './safetensors-write.ts';
import { readTorchFile } from './torch-pickle.ts';
import { MODULES_TO_SAVE, parsePeftKey, peftKey, peftMagnitudeKey, peftModuleKey, type ModuleToSave } from './weight-names.ts';

export interface AdapterConfig {
  readonly r: number;
  readonly loraAlpha: number;
  readonly loraDropout: number;
  /** Module names (matched as PEFT does: equal to, or a dot-suffix of, the module's name), or a regex string. */
  readonly targetModules: readonly string[] | string;
  readonly layersToTransform: readonly number[] | null;
  readonly bias: 'none';
  readonly useRslora: boolean;
  /** DoRA: every target also has a lora_magnitude_vector. */
  readonly useDora: boolean;
  /** PEFT's modules_to_save: full copies of these modules, trained, that replace the base's. */
  readonly modulesToSave: readonly ModuleToSave[];
  readonly taskType: string | null;
  readonly peftType: 'LORA';
  readonly baseModelNameOrPath: string | null;
  /** adapter_config.json as read, so that fields we do not model survive a round trip. */
  readonly raw: Readonly<Record<string, unknown>>;
}

export interface PeftAdapter {
  config: AdapterConfig;
  /** Keyed by PEFT file keys (base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight). */
  tensors: Map<string, HostTensor>;
}

/** PEFT 0.21's adapter_config.json fields and their defaults; ours are laid over them when writing. */
const PEFT_FIELDS: Readonly<Record<string, unknown>> = {
  alora_invocation_tokens: null, alpha_pattern: {}, arrow_config: null, auto_mapping: null, base_model_name_or_path: null,
  bias: 'none', corda_config: null, ensure_weight_tying: false, eva_config: null, exclude_modules: null, fan_in_fan_out: false,
  inference_mode: true, init_lora_weights: true, kasa_config: null, layer_replication: null, layers_pattern: null,
  layers_to_transform: null, loftq_config: {}, lora_alpha: 8, lora_bias: false, lora_dropout: 0.0, lora_ga_config: null,
  megatron_config: null, megatron_core: 'megatron.core', modules_to_save: null, monteclora_config: null, peft_type: 'LORA',
  peft_version: '0.21.0', qalora_group_size: 16, r: 8, rank_pattern: {}, revision: null, target_modules: null,
  target_parameters: null, task_type: 'CAUSAL_LM', trainable_token_indices: null, use_bdlora: null, use_dora: false,
  use_qalora: false, use_rslora: false, velora_config: null,
};

const FLOAT_FIELDS = new Set(['lora_dropout']);

/** Settings we cannot honour: set to anything but their default, they are an error naming them. */
const UNSUPPORTED: readonly [string, string][] = [
  ['rank_pattern', 'per-module ranks'], ['alpha_pattern', 'per-module alphas'],
  ['fan_in_fan_out', 'transposed (Conv1D) weights'],
  ['lora_bias', 'LoRA biases'], ['layer_replication', 'layer replication'], ['trainable_token_indices', 'trainable tokens'],
  ['target_parameters', 'LoRA on parameters'], ['use_qalora', 'QA-LoRA'], ['alora_invocation_tokens', 'activated LoRA'],
];

export function parseAdapterConfig(json: unknown, source: string): AdapterConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new UserError(`${source} is not a JSON object`);
  const raw = json as Record<string, unknown>;
  const fail = (what: string): never => {
    throw new UserError(`${source}: ${what}`);
  };
  const get = (key: string) => (raw[key] === undefined || raw[key] === null ? PEFT_FIELDS[key] : raw[key]);
  if (raw.peft_type !== 'LORA') fail(`peft_type ${JSON.stringify(raw.peft_type)} is not supported (only LORA)`);
  for (const [key, what] of UNSUPPORTED) {
    const v = raw[key];
    const isSet = v !== undefined && v !== null && v !== false && !(typeof v === 'object' && Object.keys(v).length === 0);
    if (isSet) fail(`${key} is set, but this is not supported (${what})`);
  }
  if (get('bias') !== 'none') fail(`bias ${JSON.stringify(raw.bias)} is not supported (only "none")`);
  const r = get('r');
  if (!Number.isSafeInteger(r) || (r as number) <= 0) fail(`r must be a positive integer, got ${JSON.stringify(r)}`);
  const loraAlpha = get('lora_alpha');
  if (typeof loraAlpha !== 'number' || !(loraAlpha > 0)) fail(`lora_alpha must be a positive number, got ${JSON.stringify(loraAlpha)}`);
  const loraDropout = get('lora_dropout');
  if (typeof loraDropout !== 'number' || loraDropout < 0 || loraDropout >= 1) fail(`lora_dropout must be in [0, 1), got ${JSON.stringify(loraDropout)}`);
  const targets = raw.target_modules ?? ['q_proj', 'v_proj']; // PEFT's default for llama, mistral and qwen2
  if (!(typeof targets === 'string' || (Array.isArray(targets) && targets.length > 0 && targets.every((t) => typeof t === 'string')))) {
    fail(`target_modules must be a list of module names or a regex string, got ${JSON.stringify(targets)}`);
  }
  const modules = raw.modules_to_save ?? [];
  if (!(Array.isArray(modules) && modules.every((m) => typeof m === 'string' && Object.hasOwn(MODULES_TO_SAVE, m)))) {
    fail(`modules_to_save ${JSON.stringify(modules)} is not supported: only embed_tokens and lm_head`);
  }
  const layers = raw.layers_to_transform ?? null;
  const layersToTransform = typeof layers === 'number' ? [layers] : layers;
  if (layersToTransform !== null && !(Array.isArray(layersToTransform) && layersToTransform.every((l) => Number.isSafeInteger(l) && l >= 0))) {
    fail(`layers_to_transform must be a layer index or a list of them, got ${JSON.stringify(layers)}`);
  }
  return Object.freeze({
    r: r as number,
    loraAlpha,
    loraDropout,
    targetModules: typeof targets === 'string' ? targets : Object.freeze([...(targets as string[])]),
    layersToTransform: layersToTransform && Object.freeze([...(layersToTransform as number[])]),
    bias: 'none',
    useRslora: get('use_rslora') === true,
    useDora: get('use_dora') === true,
    modulesToSave: Object.freeze([...new Set(modules as ModuleToSave[])]),
    taskType: typeof raw.task_type === 'string' ? raw.task_type : null,
    peftType: 'LORA',
    baseModelNameOrPath: typeof raw.base_model_name_or_path === 'string' ? raw.base_model_name_or_path : null,
    raw: Object.freeze({ ...raw }),
  } as AdapterConfig);
}

/** A config for a new adapter, as PEFT would write it for these settings. */
export function makeAdapterConfig(s: {
  r: number;
  loraAlpha: number;
  loraDropout: number;
  targetModules: readonly string[];
  useRslora?: boolean;
  useDora?: boolean;
  modulesToSave?: readonly ModuleToSave[];
  baseModelNameOrPath?: string | null;
}): AdapterConfig {
  return parseAdapterConfig({
    ...PEFT_FIELDS,
    r: s.r,
    lora_alpha: s.loraAlpha,
    lora_dropout: s.loraDropout,
    target_modules: [...s.targetModules],
    use_rslora: s.useRslora ?? false,
    use_dora: s.useDora ?? false,
    modules_to_save: s.modulesToSave?.length ? [...s.modulesToSave] : null,
    base_model_name_or_path: s.baseModelNameOrPath ?? null,
  }, 'new adapter settings');
}

/** Reads `<dir>/adapter_config.json` alone. */
export function readAdapterConfig(dir: string): AdapterConfig {
  const configPath = join(dir, 'adapter_config.json');
  if (!existsSync(configPath)) {
    throw new UserError(`${dir} has no adapter_config.json: pass the folder that holds adapter_config.json and adapter_model.safetensors`);
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (err) {
    throw new UserError(`${configPath} is not valid JSON: ${(err as Error).message}`);
  }
  return parseAdapterConfig(json, configPath);
}

/** Reads `<dir>/adapter_config.json` and the weights, from adapter_model.safetensors or else adapter_model.bin. */
export function readPeftAdapter(dir: string): PeftAdapter {
  const config = readAdapterConfig(dir);
  const safetensorsPath = join(dir, 'adapter_model.safetensors');
  const binPath = join(dir, 'adapter_model.bin');
  const weightsPath = existsSync(safetensorsPath) ? safetensorsPath : existsSync(binPath) ? binPath : null;
  if (!weightsPath) throw new UserError(`${dir} has adapter_config.json but neither adapter_model.safetensors nor adapter_model.bin`);
  const tensors = weightsPath === safetensorsPath ? readSafetensors(weightsPath) : readTorchFile(weightsPath);
  if (![...tensors.keys()].some((k) => parsePeftKey(k) !== null)) {
    throw new UserError(
      `${weightsPath} holds no LoRA weights (${tensors.size} tensors, none named like ...lora_A.weight): ` +
        'an adapter saved empty, as alpaca-lora does with newer PEFT versions; train it again',
    );
  }
  return { config, tensors };
}

/** Writes adapter_config.json (PEFT's field set and formatting) and adapter_model.safetensors, atomically. */
export async function writePeftAdapter(dir: string, config: AdapterConfig, tensors: ReadonlyMap<string, HostTensor>): Promise<void> {
  await mkdir(dir, { recursive: true });
  const json = {
    ...PEFT_FIELDS,
    ...config.raw,
    r: config.r,
    lora_alpha: config.loraAlpha,
    lora_dropout: config.loraDropout,
    target_modules: config.targetModules,
    layers_to_transform: config.layersToTransform,
    bias: config.bias,
    use_rslora: config.useRslora,
    use_dora: config.useDora,
    task_type: config.taskType,
    peft_type: config.peftType,
    base_model_name_or_path: config.baseModelNameOrPath,
    inference_mode: true,
  };
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  await writeFileAtomic(join(dir, 'adapter_config.json'), pythonJson(json, FLOAT_FIELDS));
}

/** The (layer, projection) pairs the adapter's target_modules and layers_to_transform select, as PEFT matches them. */
export function adapterTargets(config: AdapterConfig, numLayers: number): { layer: number; projection: Projection }[] {
  const targets = config.targetModules;
  const regex = typeof targets === 'string' ? pythonRegex(targets) : null;
  const matches = (module: string) =>
    regex ? regex.test(module) : (targets as readonly string[]).some((t) => module === t || module.endsWith(`.${t}`));
  const out: { layer: number; projection: Projection }[] = [];
  for (let layer = 0; layer < numLayers; layer++) {
    if (config.layersToTransform && !config.layersToTransform.includes(layer)) continue;
    for (const projection of PROJECTIONS) {
      if (matches(`model.layers.${layer}.${PROJECTION_INFO[projection].block}.${projection}`)) out.push({ layer, projection });
    }
  }
  return out;
}

function pythonRegex(pattern: string): RegExp {
  try {
    return new RegExp(`^(?:${pattern})$`); // PEFT uses re.fullmatch
  } catch {
    throw new UserError(`target_modules regex ${JSON.stringify(pattern)} cannot be read`);
  }
}

/**
 * Checks the adapter against a base model: every key is a LoRA A or B (or, with use_dora, a magnitude) of a
 * targeted projection of an existing layer, A is (r, in), B is (out, r) and a magnitude (out), and every target
 * has all of them. Throws on the first mismatch.
 */
export function checkAdapterFitsBase(adapter: PeftAdapter, config: LlamaConfig, source = 'the adapter'): void {
  const { r } = adapter.config;
  const targets = adapterTargets(adapter.config, config.numLayers);
  if (targets.length === 0) throw new UserError(`${source}: target_modules ${JSON.stringify(adapter.config.targetModules)} selects no projection of the base model`);
  const targeted = new Set(targets.map((t) => `${t.layer}.${t.projection}`));
  const modules = new Map(adapter.config.modulesToSave.map((m) => [peftModuleKey(m), m]));
  for (const [key, tensor] of adapter.tensors) {
    const module = modules.get(key);
    if (module) {
      const rows = tensor.shape[0]!;
      if (tensor.shape.length !== 2 || tensor.shape[1] !== config.hiddenSize || rows < config.vocabSize) {
        const why = rows < config.vocabSize && tensor.shape[1] === config.hiddenSize ? `, fewer rows than the base's vocabulary: it was trained on another base` : '';
        throw new UserError(`${source}: "${key}" (modules_to_save ${module}) has shape [${tensor.shape.join(', ')}], but the base model's is [${config.vocabSize}, ${config.hiddenSize}]${why}`);
      }
      if (module === 'lm_head' && config.tieWordEmbeddings) throw new UserError(`${source}: modules_to_save lm_head on a base whose lm_head is its embedding (tie_word_embeddings) is not supported`);
      continue;
    }
    const parsed = parsePeftKey(key);
    if (!parsed) throw new UserError(`${source}: "${key}" is not a LoRA A or B weight of a LLaMA projection`);
    if (parsed.matrix === 'magnitude' && !adapter.config.useDora) {
      throw new UserError(`${source}: "${key}" is a DoRA magnitude, but adapter_config.json does not set use_dora`);
    }
    if (parsed.layer >= config.numLayers) {
      throw new UserError(`${source}: "${key}" is for layer ${parsed.layer}, but the base model has ${config.numLayers} layers`);
    }
    if (!targeted.has(`${parsed.layer}.${parsed.projection}`)) throw new UserError(`${source}: "${key}" is not selected by target_modules`);
    const { inFeatures, outFeatures } = projectionFeatures(config, parsed.projection);
    const expected = parsed.matrix === 'A' ? [r, inFeatures] : parsed.matrix === 'B' ? [outFeatures, r] : [outFeatures];
    if (tensor.shape.join() !== expected.join()) {
      throw new UserError(`${source}: "${key}" has shape [${tensor.shape.join(', ')}], but r=${r} on this base model needs [${expected.join(', ')}]`);
    }
  }
  for (const [key, module] of modules) if (!adapter.tensors.has(key)) throw new UserError(`${source} has no "${key}", which its modules_to_save (${module}) requires`);
  savedVocabSize(adapter, source);
  for (const { layer, projection } of targets) {
    const keys = [peftKey(layer, projection, 'A'), peftKey(layer, projection, 'B')];
    if (adapter.config.useDora) keys.push(peftMagnitudeKey(layer, projection));
    for (const key of keys) {
      if (!adapter.tensors.has(key)) throw new UserError(`${source} has no "${key}", which its target_modules${adapter.config.useDora ? ' and use_dora' : ''} require`);
    }
  }
}

/**
 * The vocabulary size of the adapter's modules_to_save copies (more rows than the base's when tokens were added
 * in training); null without copies. Copies of different sizes are an error.
 */
export function savedVocabSize(adapter: PeftAdapter, source = 'the adapter'): number | null {
  const sizes = adapter.config.modulesToSave.map((m) => [peftModuleKey(m), adapter.tensors.get(peftModuleKey(m))?.shape[0]] as const);
  const [first, ...rest] = sizes;
  const other = rest.find(([, n]) => n !== first?.[1]);
  if (other) throw new UserError(`${source}: "${first![0]}" has ${first![1]} rows but "${other[0]}" has ${other[1]}: the copies must share one vocabulary size`);
  return first?.[1] ?? null;
}
