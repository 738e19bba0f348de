// The settings that ask for a base model quantized on load, named as transformers' BitsAndBytesConfig names
// them (camelCase here, snake_case as flags), with its defaults except bnb_4bit_quant_type (nf4, as QLoRA
// uses). bnbConfigOf turns them into a BnbConfig, refusing contradictions in one line naming the flag.
// Not the loading itself (quantized-base.ts).

import type { BnbComputeDtype, BnbConfig } from '../formats/bnb-config.ts';
import { UserError } from '../errors.ts';

export interface QuantizationOptions {
  loadIn8bit: boolean;
  loadIn4bit: boolean;
  bnb4bitQuantType: string; // nf4 or fp4
  bnb4bitUseDoubleQuant: boolean;
  bnb4bitComputeDtype: string; // float32, bfloat16 or float16
  llmInt8Threshold: number;
  /** Modules left unquantized: a projection (down_proj), a block (mlp, self_attn) or a prefix (model.layers.0). */
  llmInt8SkipModules: string[] | null;
}

export const QUANTIZATION_DEFAULTS: Readonly<QuantizationOptions> = Object.freeze({
  loadIn8bit: false,
  loadIn4bit: false,
  bnb4bitQuantType: 'nf4',
  bnb4bitUseDoubleQuant: false,
  bnb4bitComputeDtype: 'float32',
  llmInt8Threshold: 6,
  llmInt8SkipModules: null,
});

const COMPUTE_DTYPES: readonly BnbComputeDtype[] = ['float32', 'bfloat16', 'float16'];

/** The quantization asked for (null: none), or a UserError naming the flag that cannot be honoured. */
export function bnbConfigOf(options: Partial<QuantizationOptions> = {}): BnbConfig | null {
  const o = { ...QUANTIZATION_DEFAULTS, ...options };
  const d = QUANTIZATION_DEFAULTS;
  if (o.loadIn4bit && o.loadIn8bit) throw new UserError('--load_in_4bit and --load_in_8bit ask for two quantizations: pass one of them');
  if (o.bnb4bitQuantType !== 'nf4' && o.bnb4bitQuantType !== 'fp4') throw new UserError(`--bnb_4bit_quant_type must be nf4 or fp4, got "${o.bnb4bitQuantType}"`);
  const computeDtype = o.bnb4bitComputeDtype.replace(/^torch\./, '') as BnbComputeDtype;
  if (!COMPUTE_DTYPES.includes(computeDtype)) throw new UserError(`--bnb_4bit_compute_dtype must be one of ${COMPUTE_DTYPES.join(', ')}, got "${o.bnb4bitComputeDtype}"`);
  if (!(Number.isFinite(o.llmInt8Threshold) && o.llmInt8Threshold >= 0)) throw new UserError(`--llm_int8_threshold must be a number >= 0 (0: no outlier columns), got ${o.llmInt8Threshold}`);
  const skip = o.llmInt8SkipModules;
  if (skip !== null && (!Array.isArray(skip) || skip.some((s) => typeof s !== 'string' || !/^[\w.]+$/.test(s)))) {
    throw new UserError(`--llm_int8_skip_modules must list module names like [down_proj] or [model.layers.0], got ${JSON.stringify(skip)}`);
  }
  if (!o.loadIn4bit) {
    for (const [flag, value, fallback] of [
      ['bnb_4bit_quant_type', o.bnb4bitQuantType, d.bnb4bitQuantType],
      ['bnb_4bit_use_double_quant', o.bnb4bitUseDoubleQuant, d.bnb4bitUseDoubleQuant],
      ['bnb_4bit_compute_dtype', computeDtype, d.bnb4bitComputeDtype],
    ] as const) {
      if (value !== fallback) throw new UserError(`--${flag} ${value} applies only with --load_in_4bit: add --load_in_4bit or drop it`);
    }
  }
  if (!o.loadIn8bit && o.llmInt8Threshold !== d.llmInt8Threshold) {
    throw new UserError(`--llm_int8_threshold ${o.llmInt8Threshold} applies only with --load_in_8bit: add --load_in_8bit or drop it`);
  }
  if (!o.loadIn4bit && !o.loadIn8bit) {
    if (skip !== null) throw new UserError('--llm_int8_skip_modules applies only with --load_in_4bit or --load_in_8bit: add one or drop it');
    return null;
  }
  const skipModules = skip === null ? null : Object.freeze([...skip]);
  if (o.loadIn8bit) return Object.freeze({ bits: 8, threshold: o.llmInt8Threshold, skipModules });
  return Object.freeze({ bits: 4, quantType: o.bnb4bitQuantType, doubleQuant: o.bnb4bitUseDoubleQuant, computeDtype, skipModules });
}
