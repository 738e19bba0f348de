// `alpaca-lora export-state-dict`: merge a LoRA adapter into its base and save Meta's consolidated.00.pth + params.json.
// As the seed's export_state_dict_checkpoint.py: BASE_MODEL names the base, ./ckpt is the default output.

import { exportStateDict } from '../export/export-state-dict.ts';
import { parseOutputDType } from '../export/output-dtype.ts';
import { bnbConfigOf } from '../model/quantization-options.ts';
import { required } from './args.ts';
import type { Command } from './command.ts';
import { BASE_MODEL_HINT, JSON_FLAG, mergedSentence, printExport, wroteFolder } from './export-report.ts';
import { QUANT_FLAGS, quantizationFromFlags } from './quant-flags.ts';

export const exportStateDictCommand: Command = {
  name: 'export-state-dict',
  summary: 'merge the adapter into the base and save Meta\'s layout (consolidated.00.pth + params.json)',
  flags: {
    base_model: { type: 'string', default: process.env.BASE_MODEL, help: 'base model folder (config.json + weights) or Hub id (default: $BASE_MODEL)' },
    lora_weights: { type: 'string', help: 'PEFT adapter folder or Hub id to merge' },
    output_dir: { type: 'string', default: './ckpt', help: 'folder to write (must be new or empty unless --overwrite)' },
    dtype: { type: 'string', help: 'float16, bfloat16 or float32 (default: the base weights\' own)' },
    num_shards: { type: 'number', default: 1, help: 'model-parallel files consolidated.00.pth ... (split as Meta\'s code splits them)' },
    overwrite: { type: 'boolean', default: false, help: 'replace a non-empty --output_dir' },
    verify: { type: 'boolean', default: true, help: 'read the checkpoint back and compare it with the merge' },
    ...JSON_FLAG,
    ...QUANT_FLAGS,
  },
  async run(flags) {
    const outputDir = required('export-state-dict', flags, 'output_dir');
    const result = await exportStateDict({
      baseModel: required('export-state-dict', flags, 'base_model', BASE_MODEL_HINT),
      loraWeights: required('export-state-dict', flags, 'lora_weights'),
      outputDir,
      dtype: flags.dtype ? parseOutputDType(flags.dtype as string) : null,
      numShards: flags.num_shards as number,
      overwrite: flags.overwrite as boolean,
      verify: flags.verify as boolean,
      quantize: bnbConfigOf(quantizationFromFlags(flags)),
    });
    printExport(flags, result, [
      wroteFolder(outputDir, result.files),
      mergedSentence(flags.lora_weights, result.adapted),
      flags.verify ? 'verified: every weight read back from the checkpoint equals the merge' : 'not verified (--verify false)',
    ]);
  },
};
