// config.json's `quantization_config` as a typed, frozen object: transformers' BitsAndBytesConfig (4-bit NF4/FP4
// with uint8 storage, or 8-bit LLM.int8). Any other quant_method or storage is refused in one line naming it.
// Unknown keys are ignored. Not the quantized tensors (bnb-checkpoint.ts).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { deepFreeze, isObject } from '../util/json-object.ts';

export type BnbComputeDtype = 'float32' | 'bfloat16' | 'float16';

export interface Bnb4bitConfig {
  readonly bits: 4;
  readonly quantType: 'nf4' | 'fp4'; // bnb_4bit_quant_type
  readonly doubleQuant: boolean; // bnb_4bit_use_double_quant
  readonly computeDtype: BnbComputeDtype; // bnb_4bit_compute_dtype
  readonly skipModules: readonly string[] | null; // llm_int8_skip_modules: module names left unquantized
}

export interface Bnb8bitConfig {
  readonly bits: 8;
  readonly threshold: number; // llm_int8_threshold: activation outlier magnitude; 0 = none
  readonly skipModules: readonly string[] | null;
}

export type BnbConfig = Bnb4bitConfig | Bnb8bitConfig;

const SUPPORTED = 'supported: bitsandbytes 4-bit (nf4/fp4, uint8 storage) and 8-bit (LLM.int8)';

/** `<dir>/config.json`'s quantization_config; null when the file or the key is absent. */
export function loadQuantizationConfig(dir: string): BnbConfig | null {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) return null;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UserError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  return parseQuantizationConfig(json, path);
}

/** The quantization_config of a parsed config.json (`sourcePath` names it in errors); null when it has none. */
export function parseQuantizationConfig(configJson: unknown, sourcePath: string): BnbConfig | null {
  const q = isObject(configJson) ? configJson.quantization_config : undefined;
  if (q == null) return null;
  const refuse = (what: string): never => {
    throw new UserError(`${sourcePath}: quantization_config ${what}, which is not supported (${SUPPORTED}); dequantize the model with the library that made it and save it unquantized`);
  };
  const fail = (what: string): never => {
    throw new UserError(`${sourcePath}: quantization_config ${what}: fix config.json or save the model again with transformers`);
  };
  if (!isObject(q)) return fail(`is ${JSON.stringify(q)}, not an object`);
  const method = q.quant_method ?? (q.load_in_4bit || q.load_in_8bit ? 'bitsandbytes' : undefined);
  if (method !== 'bitsandbytes') return refuse(`has quant_method ${JSON.stringify(method ?? null)}`);
  const flag = (key: string, fallback: boolean): boolean => {
    const v = q[key] ?? fallback;
    return typeof v === 'boolean' ? v : fail(`"${key}" must be true or false, got ${JSON.stringify(v)}`);
  };
  const in4 = flag('load_in_4bit', false);
  const in8 = flag('load_in_8bit', false);
  if (in4 === in8) return fail(`has load_in_4bit ${in4} and load_in_8bit ${in8}: exactly one must be true`);
  const skipModules = q.llm_int8_skip_modules ?? null;
  if (skipModules !== null && !(Array.isArray(skipModules) && skipModules.every((s) => typeof s === 'string'))) {
    return fail(`"llm_int8_skip_modules" must be a list of module names or null, got ${JSON.stringify(skipModules)}`);
  }
  const common = { skipModules: skipModules as string[] | null };
  if (in8) {
    if (flag('llm_int8_has_fp16_weight', false)) return refuse('has llm_int8_has_fp16_weight true (float16 weights re-quantized at every step)');
    const threshold = q.llm_int8_threshold ?? 6.0;
    if (typeof threshold !== 'number' || !(threshold >= 0)) return fail(`"llm_int8_threshold" must be a number >= 0, got ${JSON.stringify(threshold)}`);
    return deepFreeze({ bits: 8, threshold, ...common });
  }
  const storage = q.bnb_4bit_quant_storage ?? 'uint8';
  if (storage !== 'uint8') return refuse(`has bnb_4bit_quant_storage ${JSON.stringify(storage)} (only uint8)`);
  const quantType = q.bnb_4bit_quant_type ?? 'fp4'; // BitsAndBytesConfig's default
  if (quantType !== 'nf4' && quantType !== 'fp4') return refuse(`has bnb_4bit_quant_type ${JSON.stringify(quantType)}`);
  const computeDtype = String(q.bnb_4bit_compute_dtype ?? 'float32').replace(/^torch\./, '');
  if (computeDtype !== 'float32' && computeDtype !== 'bfloat16' && computeDtype !== 'float16') {
    return refuse(`has bnb_4bit_compute_dtype ${JSON.stringify(q.bnb_4bit_compute_dtype)} (float32, bfloat16 or float16)`);
  }
  return deepFreeze({ bits: 4, quantType, doubleQuant: flag('bnb_4bit_use_double_quant', false), computeDtype, ...common });
}
