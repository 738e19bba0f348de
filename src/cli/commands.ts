// The list of commands `alpaca-lora` knows. Each lives in its own file in this folder.

import type { Command } from './command.ts';
import { exportGgufCommand } from './export-gguf.ts';
import { exportHfCommand } from './export-hf.ts';
import { exportStateDictCommand } from './export-state-dict.ts';
import { finetuneCommand } from './finetune.ts';
import { generateCommand } from './generate.ts';
import { inspectDataCommand } from './inspect-data.ts';
import { inspectModelCommand } from './inspect-model.ts';
import { planCommand } from './plan.ts';
import { scoreCommand } from './score.ts';
import { serveCommand } from './serve.ts';
import { tokenizeCommand } from './tokenize.ts';

export const commands: Command[] = [
  finetuneCommand,
  scoreCommand,
  tokenizeCommand,
  inspectDataCommand,
  inspectModelCommand,
  planCommand,
  exportGgufCommand,
  exportHfCommand,
  exportStateDictCommand,
  generateCommand,
  serveCommand,
];
