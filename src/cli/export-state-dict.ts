// `alpaca-lora export-state-dict`: merge a LoRA adapter into its base and save Meta's consolidated.00.pth + params.json.

import { exportStateDict } from '../export/export-state-dict.ts';
import { parseOutputDType } from '../export/output-dtype.ts';
import { required } from './args.ts';
import type { Command } from './command.ts';

export const exportStateDictCommand: Command = {
  name: 'export-state-dict',
  summary: 'merge the adapter into the base and save Meta\'s layout (consolidated.00.pth + params.json)',
  flags: {
    base_model: { type: 'string', help: 'base model folder (config.json + weights)' },
    lora_weights: { type: 'string', help: 'PEFT adapter folder to merge' },
    output_dir: { type: 'string', default: './ckpt', help: 'folder to write (must be new or empty unless --overwrite)' },
    dtype: { type: 'string', help: 'float16, bfloat16 or float32 (default: the base weights\' own)' },
    num_shards: { type: 'number', default: 1, help: 'model-parallel files consolidated.00.pth ... (split as Meta\'s code splits them)' },
    overwrite: { type: 'boolean', default: false, help: 'replace a non-empty --output_dir' },
    verify: { type: 'boolean', default: true, help: 'read the checkpoint back and compare it with the merge' },
  },
  async run(flags) {
    const result = await exportStateDict({
      baseModel: required('export-state-dict', flags, 'base_model'),
      loraWeights: required('export-state-dict', flags, 'lora_weights'),
      outputDir: required('export-state-dict', flags, 'output_dir'),
      dtype: flags.dtype ? parseOutputDType(flags.dtype as string) : null,
      numShards: flags.num_shards as number,
      overwrite: flags.overwrite as boolean,
      verify: flags.verify as boolean,
    });
    console.log(JSON.stringify(result));
  },
};
