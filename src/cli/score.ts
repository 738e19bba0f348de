// `alpaca-lora score`: mean loss of a token batch under a model (+ adapter), optionally its logits.

import { selectBackend } from '../backends/select.ts';
import { score } from '../api/score.ts';
import { readBatchFile } from '../data/batch-file.ts';
import { required } from './args.ts';
import type { Command } from './command.ts';

export const scoreCommand: Command = {
  name: 'score',
  summary: 'loss (and logits) of a token batch: check a model loads and computes right',
  flags: {
    base_model: { type: 'string', help: 'model folder (config.json + weights)' },
    lora_weights: { type: 'string', help: 'PEFT adapter folder to apply' },
    batch: { type: 'string', help: 'JSON file with input_ids, optional attention_mask and labels (lists of rows), or the .jsonl inspect-data --dump_jsonl writes' },
    logits_out: { type: 'string', help: 'write float32 logits (rows x T x vocab) here as .safetensors' },
    backend: { type: 'string', default: 'auto', help: 'js, cpu, cuda or auto' },
  },
  async run(flags) {
    const backend = selectBackend(flags.backend as string);
    const batch = readBatchFile(required('score', flags, 'batch'));
    const result = await score({
      backend,
      baseModel: required('score', flags, 'base_model'),
      loraWeights: flags.lora_weights as string | undefined,
      batch,
      logitsOut: flags.logits_out as string | undefined,
    });
    console.log(JSON.stringify({ loss: result.loss, tokens: result.tokens }));
  },
};
