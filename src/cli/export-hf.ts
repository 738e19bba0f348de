// `alpaca-lora export-hf`: merge a LoRA adapter into its base and save a Hugging Face checkpoint folder. As the
// seed's export_hf_checkpoint.py: the BASE_MODEL environment variable names the base, ./hf_ckpt is the default output.

import { selectBackend } from '../backends/select.ts';
import { exportHf } from '../export/export-hf.ts';
import { parseOutputDType } from '../export/output-dtype.ts';
import { parseSize } from '../util/parse-size.ts';
import { bnbConfigOf } from '../model/quantization-options.ts';
import { required, UsageError } from './args.ts';
import type { Command } from './command.ts';
import { BASE_MODEL_HINT, JSON_FLAG, mergedSentence, printExport, wroteFolder } from './export-report.ts';
import { QUANT_FLAGS, quantizationFromFlags } from './quant-flags.ts';

export const exportHfCommand: Command = {
  name: 'export-hf',
  summary: 'merge the adapter into the base and save a Hugging Face checkpoint (safetensors or .bin shards)',
  flags: {
    base_model: { type: 'string', default: process.env.BASE_MODEL, help: 'base model folder (config.json + weights) or Hub id (default: $BASE_MODEL)' },
    lora_weights: { type: 'string', help: 'PEFT adapter folder or Hub id to merge' },
    output_dir: { type: 'string', default: './hf_ckpt', help: 'folder to write (must be new or empty unless --overwrite)' },
    max_shard_size: { type: 'string', default: '400MB', help: 'largest shard file, e.g. 400MB, 2GB' },
    save_format: { type: 'string', default: 'safetensors', help: 'safetensors, or bin (torch.save shards)' },
    dtype: { type: 'string', help: 'float16, bfloat16 or float32 (default: the base weights\' own)' },
    overwrite: { type: 'boolean', default: false, help: 'replace a non-empty --output_dir' },
    verify: { type: 'boolean', default: true, help: 'read the export back and compare probe logits with base + adapter' },
    backend: { type: 'string', default: 'auto', help: 'js, cpu, cuda or auto (for the probe logits)' },
    ...JSON_FLAG,
    ...QUANT_FLAGS,
  },
  async run(flags) {
    const saveFormat = flags.save_format as string;
    if (saveFormat !== 'safetensors' && saveFormat !== 'bin') throw new UsageError(`export-hf: --save_format must be safetensors or bin, got "${saveFormat}"`);
    const outputDir = required('export-hf', flags, 'output_dir');
    const quantize = bnbConfigOf(quantizationFromFlags(flags)); // refused before the backend line is printed
    const result = await exportHf({
      baseModel: required('export-hf', flags, 'base_model', BASE_MODEL_HINT),
      loraWeights: required('export-hf', flags, 'lora_weights'),
      outputDir,
      maxShardBytes: parseSize(flags.max_shard_size as string, '--max_shard_size'),
      saveFormat,
      dtype: flags.dtype ? parseOutputDType(flags.dtype as string) : null,
      overwrite: flags.overwrite as boolean,
      verify: flags.verify as boolean,
      backend: flags.verify ? selectBackend(flags.backend as string) : undefined,
      quantize,
    });
    const check = result.logits;
    printExport(flags, result, [
      wroteFolder(outputDir, result.files),
      mergedSentence(flags.lora_weights, result.adapted),
      check
        ? `verified: every weight read back equals the merge, and the export's logits on a probe batch match base + adapter (largest difference ${check.maxDiff.toExponential(1)}, allowed ${(check.tolerance * check.scale).toExponential(1)})`
        : 'not verified (--verify false)',
    ]);
  },
};
