// The training and validation rows of a run, prepared as the seed's finetune.py prepares them: load the
// data set, split val_set_size off it (seeded, 42) or read --val_data_path, and tokenize every record with
// generate_and_tokenize_prompt. Pre-tokenized .jsonl rows pass through as they are (cut at cutoff_len).

import { loadDataset, type Dataset, type DatasetOptions } from '../data/dataset.ts';
import { Prompter } from '../data/prompter.ts';
import { splitTrainVal } from '../data/split.ts';
import { makePromptTokenizer, tokenizeRecords, type TokenizedExample } from '../data/tokenize.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';

export interface PreparedData {
  train: TokenizedExample[];
  val: TokenizedExample[];
  dataset: Dataset;
  /** Where the validation rows came from, for the printout. */
  valSource: string;
}

export interface DataSettings {
  dataPath: string;
  valDataPath: string | null;
  valSetSize: number;
  cutoffLen: number;
  trainOnInputs: boolean;
  addEosToken: boolean;
  promptTemplateName: string;
  dataset: DatasetOptions;
}

export async function prepareData(tokenizer: Tokenizer, s: DataSettings): Promise<PreparedData> {
  const dataset = await loadDataset(s.dataPath, s.dataset);
  const toExample = makePromptTokenizer(tokenizer, Prompter.load(s.promptTemplateName), {
    cutoffLen: s.cutoffLen, trainOnInputs: s.trainOnInputs, addEosToken: s.addEosToken,
  });
  if (s.valDataPath) {
    const valSet = await loadDataset(s.valDataPath, { ...s.dataset, format: undefined });
    return {
      train: tokenizeRecords(dataset.records, toExample, dataset.path),
      val: tokenizeRecords(valSet.records, toExample, valSet.path),
      dataset,
      valSource: `${valSet.path} (${valSet.records.length} records)`,
    };
  }
  const { train, val } = splitTrainVal(dataset.records, s.valSetSize, 42);
  return {
    train: tokenizeRecords(train, toExample, dataset.path),
    val: val.map(toExample),
    dataset,
    valSource: val.length ? `${val.length} records split off ${dataset.path} (seed 42)` : 'none (--val_set_size 0)',
  };
}
