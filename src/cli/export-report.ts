// What the export commands print: sentences that say what was written, its size and what was checked, or,
// with --json, the library's result as one JSON line for scripts; and the hint when no base model is given.
// Not the exports themselves (src/export).

import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { FlagSpecs, ParsedFlags } from './args.ts';

/** How the seed's export scripts take the base model, for the message when none is given. */
export const BASE_MODEL_HINT = `: pass it, or set BASE_MODEL as the seed's export scripts read it (export BASE_MODEL=huggyllama/llama-7b)`;

export const JSON_FLAG: FlagSpecs = {
  json: { type: 'boolean', default: false, help: 'print the result as one JSON line (for scripts) instead of sentences' },
};

/** Decimal units, as --max_shard_size and the Hub count them. */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) [n, i] = [n / 1000, i + 1];
  return i === 0 ? `${n} bytes` : `${n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
}

/** "wrote N files (size) to DIR: a, b, c, …" for a folder export. */
export function wroteFolder(dir: string, files: readonly string[]): string {
  const bytes = files.reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
  const shown = files.length > 6 ? [...files.slice(0, 5), `… (${files.length - 5} more)`] : files;
  return `wrote ${files.length} files (${formatBytes(bytes)}) to ${dir}: ${shown.join(', ')}`;
}

/** The sentence on the adapter, or on its absence. */
export function mergedSentence(loraWeights: unknown, adapted: number): string {
  return loraWeights ? `merged the adapter ${loraWeights} into ${adapted} weights of the base` : 'no adapter given: the base model as it is';
}

/** Prints the sentences, or the result as JSON under --json. */
export function printExport(flags: ParsedFlags, result: object, sentences: string[]): void {
  console.log(flags.json ? JSON.stringify(result) : sentences.join('\n'));
}
