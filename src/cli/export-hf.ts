// `alpaca-lora export-hf`: merge a LoRA adapter into its base and save a Hugging Face checkpoint folder.

import { selectBackend } from '../backends/select.ts';
import { exportHf } from '../export/export-hf.ts';
import { parseOutputDType } from '../export/output-dtype.ts';
import { parseSize } from '../util/parse-size.ts';
import { required, UsageError } from './args.ts';
import type { Command } from './command.ts';

export const exportHfCommand: Command = {
  name: 'export-hf',
  summary: 'merge the adapter into the base and save a Hugging Face checkpoint (safetensors or .bin shards)',
  flags: {
    base_model: { type: 'string', help: 'base model folder (config.json + weights)' },
    lora_weights: { type: 'string', help: 'PEFT adapter folder to merge' },
    output_dir: { type: 'string', help: 'folder to write (must be new or empty unless --overwrite)' },
    max_shard_size: { type: 'string', default: '400MB', help: 'largest shard file, e.g. 400MB, 2GB' },
    save_format: { type: 'string', default: 'safetensors', help: 'safetensors, or bin (torch.save shards)' },
    dtype: { type: 'string', help: 'float16, bfloat16 or float32 (default: the base weights\' own)' },
    overwrite: { type: 'boolean', default: false, help: 'replace a non-empty --output_dir' },
    verify: { type: 'boolean', default: true, help: 'read the export back and compare probe logits with base + adapter' },
    backend: { type: 'string', default: 'auto', help: 'js, cpu, cuda or auto (for the probe logits)' },
  },
  async run(flags) {
    const saveFormat = flags.save_format as string;
    if (saveFormat !== 'safetensors' && saveFormat !== 'bin') throw new UsageError(`export-hf: --save_format must be safetensors or bin, got "${saveFormat}"`);
    const result = await exportHf({
      baseModel: required('export-hf', flags, 'base_model'),
      loraWeights: required('export-hf', flags, 'lora_weights'),
      outputDir: required('export-hf', flags, 'output_dir'),
      maxShardBytes: parseSize(flags.max_shard_size as string, '--max_shard_size'),
      saveFormat,
      dtype: flags.dtype ? parseOutputDType(flags.dtype as string) : null,
      overwrite: flags.overwrite as boolean,
      verify: flags.verify as boolean,
      backend: () => selectBackend(flags.backend as string),
    });
    console.log(JSON.stringify(result));
  },
};
