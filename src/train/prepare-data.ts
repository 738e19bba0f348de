// The training and validation rows of a run, prepared as the seed's finetune.py prepares them: load the
// data set(s), split val_set_size off them (seeded, 42) or read --val_data_path, and tokenize every record
// (generate_and_tokenize_prompt, or the chat template for conversations: data/examples.ts). Pre-tokenized .jsonl
// rows pass through as they are (cut at cutoff_len). Warns when cutoff_len cuts more than 5% of the examples.

import type { ChatTemplateChoice } from '../data/chat-template-source.ts';
import { cutoffWarning } from '../data/cutoff-report.ts';
import { badRecordsWarning, type Dataset, type DatasetOptions } from '../data/dataset.ts';
import { loadDataSources, mixRecords, parseInterleaveProbs } from '../data/data-sources.ts';
import { makeExampleBuilder, type Example } from '../data/examples.ts';
import { splitTrainVal } from '../data/split.ts';
import { requireTrainedTokens } from '../data/tokenize.ts';
import { resolveDataFiles } from '../hub/resolve.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';

export interface PreparedData {
  train: Example[];
  val: Example[];
  /** The data sets read (one per --data_path entry). */
  datasets: Dataset[];
  /** Where the validation rows came from, for the printout. */
  valSource: string;
  /** The chat template the examples were rendered with (saved beside the adapter), or null. */
  chatTemplate: ChatTemplateChoice | null;
}

export interface DataSettings {
  /** One path or Hub id, or several separated by commas. */
  dataPath: string;
  valDataPath: string | null;
  valSetSize: number;
  cutoffLen: number;
  /** null: true for plain Alpaca records (the seed's default), false for chat data. */
  trainOnInputs: boolean | null;
  addEosToken: boolean;
  promptTemplateName: string;
  dataset: DatasetOptions;
  chatTemplate?: string | null;
  /** --data_columns: JSON mapping of data path to column settings. */
  dataColumns?: string | null;
  interleaveProbs?: number[] | null;
  /** The tokenizer's folder (its chat template and special tokens); null: none. */
  tokenizerDir?: string | null;
  /** Where warnings go (default: stderr). Hub downloads are logged on stderr. */
  warn?: (message: string) => void;
}

export async function prepareData(tokenizer: Tokenizer, s: DataSettings): Promise<PreparedData> {
  const warn = s.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  const resolve = (path: string) => resolveDataFiles(path, (line) => console.error(line));
  const dataset = { ...s.dataset, warn };
  const datasets = await loadDataSources(s.dataPath, dataset, s.dataColumns ?? undefined, resolve);
  const probs = s.interleaveProbs?.length ? parseInterleaveProbs(s.interleaveProbs, datasets.length) : null;
  const records = mixRecords(datasets, probs, 42);
  const valSets = s.valDataPath ? await loadDataSources(s.valDataPath, { ...dataset, format: undefined }, undefined, resolve) : [];
  const valRecords = valSets.flatMap((v) => v.records);
  const builder = makeExampleBuilder(tokenizer, {
    cutoffLen: s.cutoffLen, trainOnInputs: s.trainOnInputs, addEosToken: s.addEosToken, promptTemplateName: s.promptTemplateName,
    chatTemplate: s.chatTemplate ?? undefined, tokenizerDir: s.tokenizerDir ?? null, skipBadRecords: s.dataset.skipBadRecords,
  }, [...records, ...valRecords]);
  const build = async (part: typeof records, source: string) => {
    const { examples, bad } = await builder.build(part);
    if (bad.length) warn(badRecordsWarning(source, bad, part.length));
    return examples;
  };
  try {
    const source = datasets.map((d) => d.path).join(', ');
    let train: Example[];
    let val: Example[];
    let valSource: string;
    if (s.valDataPath) {
      train = requireTrainedTokens(await build(records, source), source);
      val = requireTrainedTokens(await build(valRecords, s.valDataPath), s.valDataPath);
      valSource = `${s.valDataPath} (${valRecords.length} records)`;
    } else {
      const split = splitTrainVal(records, s.valSetSize, 42);
      train = requireTrainedTokens(await build(split.train, source), source);
      val = await build(split.val, source);
      valSource = split.val.length ? `${split.val.length} records split off ${source} (seed 42)` : 'none (--val_set_size 0)';
    }
    const cut = cutoffWarning(train, s.cutoffLen, source);
    if (cut) warn(cut);
    return { train, val, datasets, valSource, chatTemplate: builder.chatTemplate };
  } finally {
    await builder.close();
  }
}
