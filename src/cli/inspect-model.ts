// `alpaca-lora inspect-model <folder>`: what a model folder holds (architecture, sizes, dtype or quantization per
// tensor group, parameters, bytes on disk, estimated weight memory per backend), as a table or --json.
// Parsing and printing only; the work is model/inspect.ts.

import { inspectModel, type ModelSummary } from '../model/inspect.ts';
import { bnbConfigOf } from '../model/quantization-options.ts';
import { UsageError } from './args.ts';
import type { Command } from './command.ts';
import { QUANT_FLAGS, quantizationFromFlags } from './quant-flags.ts';

const bytes = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`);
const int = (n: number) => n.toLocaleString('en-US');

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => `  ${r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')}`.trimEnd());
}

export function renderSummary(s: ModelSummary): string {
  return [
    `${s.dir}: ${s.architecture} (${s.modelType})`,
    `  layers ${s.layers}, hidden ${s.hiddenSize}, intermediate ${s.intermediateSize}, heads ${s.heads}, kv heads ${s.kvHeads}, head dim ${s.headDim}, ` +
      `vocab ${s.vocabSize}, context ${s.context}${s.tiedEmbeddings ? ', tied embeddings' : ''}`,
    `  quantization: ${s.quantization ? `bitsandbytes ${s.quantization}, stored${s.requestIgnored ? ' (the --load_in_* flags do not apply to it)' : ''}` : 'none'}`,
    `  parameters: ${int(s.parameters)}`,
    `  on disk: ${bytes(s.bytesOnDisk)} in ${s.files.length > 2 ? `${s.files[0]!.name} and ${s.files.length - 1} shards` : s.files.map((f) => f.name).join(', ')}`,
    '',
    ...table([['group', 'tensors', 'parameters', 'stored as', 'on disk'], ...s.groups.map((g) => [g.name, String(g.tensors), int(g.parameters), g.storedAs.join(', ') || '-', bytes(g.bytesOnDisk)])]),
    '',
    '  weights in memory (estimated; activations, KV cache and adapters come on top):',
    ...table([['format', 'js', 'cpu', 'cuda'], ...s.memory.map((m) => [m.format, bytes(m.js), bytes(m.cpu), m.cuda === null ? 'n/a (no quantized kernels)' : bytes(m.cuda)])]),
  ].join('\n');
}

export const inspectModelCommand: Command = {
  name: 'inspect-model',
  summary: 'what a model folder holds: architecture, sizes, dtype/quantization per tensor group, bytes on disk and in memory',
  positionals: 'FOLDER',
  flags: {
    json: { type: 'boolean', default: false, help: 'print the summary as JSON (bytes as numbers)' },
    ...QUANT_FLAGS,
  },
  async run(flags, positionals) {
    if (positionals.length !== 1) throw new UsageError(`inspect-model: pass one model folder, e.g. alpaca-lora inspect-model ./llama-7b-hf (got ${positionals.length})`);
    const summary = await inspectModel(positionals[0]!, bnbConfigOf(quantizationFromFlags(flags)));
    console.log(flags.json ? JSON.stringify(summary, null, 2) : renderSummary(summary));
  },
};
