// `alpaca-lora export-gguf`: the merged model (or, with --adapter_only, the LoRA adapter) as a GGUF file for llama.cpp.

import { exportGguf } from '../export/export-gguf.ts';
import { OUT_TYPES, type OutType } from '../export/gguf-model.ts';
import { bnbConfigOf } from '../model/quantization-options.ts';
import { required, UsageError } from './args.ts';
import type { Command } from './command.ts';
import { formatBytes, JSON_FLAG, mergedSentence, printExport } from './export-report.ts';
import { QUANT_FLAGS, quantizationFromFlags } from './quant-flags.ts';

export const exportGgufCommand: Command = {
  name: 'export-gguf',
  summary: 'merge the adapter into the base and save a GGUF file for llama.cpp (or the adapter alone: --adapter_only)',
  flags: {
    base_model: { type: 'string', help: 'base model folder (config.json + weights + tokenizer) or Hub id' },
    lora_weights: { type: 'string', help: 'PEFT adapter folder or Hub id to merge (optional: without it, the base is written)' },
    outfile: { type: 'string', help: 'the .gguf file to write' },
    outtype: { type: 'string', default: 'f16', help: `tensor type of the weights: ${OUT_TYPES.join(', ')} (--adapter_only: f32, f16)` },
    adapter_only: { type: 'boolean', default: false, help: 'write only the adapter, as a GGUF LoRA for llama.cpp --lora' },
    overwrite: { type: 'boolean', default: false, help: 'replace an existing --outfile' },
    verify: { type: 'boolean', default: true, help: 'read a float export back and compare it with the merge' },
    ...JSON_FLAG,
    ...QUANT_FLAGS,
  },
  async run(flags) {
    const outtype = flags.outtype as string;
    if (!OUT_TYPES.includes(outtype as OutType)) throw new UsageError(`export-gguf: --outtype must be one of ${OUT_TYPES.join(', ')}, got "${outtype}"`);
    const result = await exportGguf({
      baseModel: required('export-gguf', flags, 'base_model'),
      loraWeights: flags.lora_weights as string | undefined,
      outfile: required('export-gguf', flags, 'outfile'),
      outtype: outtype as OutType,
      adapterOnly: flags.adapter_only as boolean,
      overwrite: flags.overwrite as boolean,
      verify: flags.verify as boolean,
      quantize: bnbConfigOf(quantizationFromFlags(flags)),
    });
    const float = ['f32', 'f16', 'bf16'].includes(outtype);
    const checked = flags.adapter_only ? 'not read back (an adapter file holds the adapter\'s own tensors)'
      : !flags.verify ? 'not verified (--verify false)'
      : !flags.lora_weights ? 'not read back (no adapter merged: the weights are the base\'s)'
      : float ? 'verified: every weight read back equals the merge' : `not read back (${outtype} is a lossy quantization)`;
    printExport(flags, result, [
      `wrote ${result.outfile} (${formatBytes(result.bytes)}, ${result.tensors} tensors, ${outtype}${flags.adapter_only ? ', a LoRA adapter for llama.cpp --lora' : ''})`,
      flags.adapter_only ? `the adapter ${flags.lora_weights}, unmerged: ${result.adapted} adapted weights` : mergedSentence(flags.lora_weights, result.adapted),
      checked,
    ]);
  },
};
