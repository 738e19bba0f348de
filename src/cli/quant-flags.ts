// The bitsandbytes flags of every command that loads a base model, with transformers' BitsAndBytesConfig names
// and defaults (bnb_4bit_quant_type: nf4, as QLoRA uses), and the options they give. Parsing only; the
// checks are bnbConfigOf's (model/quantization-options.ts) and the loading is model/quantized-base.ts.

import { QUANTIZATION_DEFAULTS as D, type QuantizationOptions } from '../model/quantization-options.ts';
import { describeQuantization, type BaseQuantization } from '../model/quantized-base.ts';
import type { FlagSpecs, ParsedFlags } from './args.ts';

export const QUANT_FLAGS: FlagSpecs = {
  load_in_8bit: { type: 'boolean', default: D.loadIn8bit, help: 'quantize the decoder linears to LLM.int8 on load (a base stored quantized is used as it is)' },
  load_in_4bit: { type: 'boolean', default: D.loadIn4bit, help: 'quantize the decoder linears to 4 bits on load (QLoRA)' },
  bnb_4bit_quant_type: { type: 'string', default: D.bnb4bitQuantType, help: '4-bit data type: nf4 or fp4' },
  bnb_4bit_use_double_quant: { type: 'boolean', default: D.bnb4bitUseDoubleQuant, help: 'quantize the 4-bit block scales too (about 0.4 bits a weight less)' },
  bnb_4bit_compute_dtype: { type: 'string', default: D.bnb4bitComputeDtype, help: 'float32, bfloat16 or float16: recorded; the engine computes 4-bit linears in float32' },
  llm_int8_threshold: { type: 'number', default: D.llmInt8Threshold, help: 'LLM.int8: activation columns holding any |x| >= this go through in float (0: none)' },
  llm_int8_skip_modules: { type: 'list', help: 'modules left unquantized, e.g. [down_proj] or [model.layers.0] (lm_head never is)' },
};

/** generate's and serve's extra spelling: the seed's generate.py --load_8bit. */
export const LOAD_8BIT_FLAG: FlagSpecs = {
  load_8bit: { type: 'boolean', default: false, help: 'the seed\'s name for --load_in_8bit' },
};

/** The quantization options of parsed flags (defaults filled in by the specs, or here when a spec has none). */
export function quantizationFromFlags(f: ParsedFlags): QuantizationOptions {
  return {
    loadIn8bit: ((f.load_in_8bit as boolean | undefined) ?? D.loadIn8bit) || f.load_8bit === true,
    loadIn4bit: (f.load_in_4bit as boolean | undefined) ?? D.loadIn4bit,
    bnb4bitQuantType: (f.bnb_4bit_quant_type as string | undefined) ?? D.bnb4bitQuantType,
    bnb4bitUseDoubleQuant: (f.bnb_4bit_use_double_quant as boolean | undefined) ?? D.bnb4bitUseDoubleQuant,
    bnb4bitComputeDtype: (f.bnb_4bit_compute_dtype as string | undefined) ?? D.bnb4bitComputeDtype,
    llmInt8Threshold: (f.llm_int8_threshold as number | undefined) ?? D.llmInt8Threshold,
    llmInt8SkipModules: (f.llm_int8_skip_modules as string[] | undefined) ?? null,
  };
}

/** Says on stderr (stdout stays the command's output) how the loaded base is quantized, when it is. */
export function noteQuantization(q: BaseQuantization | null | undefined): void {
  if (q) console.error(`base model: ${describeQuantization(q)}`);
}
