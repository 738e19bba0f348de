// `alpaca-lora inspect-data`: tokenizes a data set exactly as finetune would and reports lengths,
// truncation and trained tokens, shows one example, and can dump the rows (--dump_jsonl).
// Parsing and printing only; the work is src/data. Also exports the data flags finetune shares.

import { DATA_FORMATS, loadDataset, type DataFormat, type DatasetOptions } from '../data/dataset.ts';
import { renderExample, summarizeExamples } from '../data/inspect.ts';
import { Prompter } from '../data/prompter.ts';
import { makePromptTokenizer, tokenizeRecords, trainedTokenCount } from '../data/tokenize.ts';
import { writeTokenizedJsonl } from '../data/tokenized-jsonl.ts';
import { loadTokenizer } from '../tokenizer/load.ts';
import { required, UsageError, type FlagSpecs, type ParsedFlags } from './args.ts';
import type { Command } from './command.ts';

/** The flags that choose and shape the training data, with the seed's defaults. */
export const DATA_FLAGS: FlagSpecs = {
  data_path: { type: 'string', help: '.json (array), .jsonl or .txt data file' },
  prompt_template_name: { type: 'string', default: 'alpaca', help: 'alpaca, alpaca_legacy, alpaca_short, vigogne, or a template .json path' },
  cutoff_len: { type: 'number', default: 256, help: 'truncate every example to this many tokens' },
  train_on_inputs: { type: 'boolean', default: true, help: 'train on the prompt too (false: only on the response)' },
  add_eos_token: { type: 'boolean', default: false, help: 'the seed\'s add_eos_token (counts the masked prompt with an EOS)' },
  data_format: { type: 'string', help: `${DATA_FORMATS.join(', ')} (default: from the first record)` },
  instruction_field: { type: 'string', default: 'instruction', help: 'record field holding the instruction' },
  input_field: { type: 'string', default: 'input', help: 'record field holding the optional input' },
  output_field: { type: 'string', default: 'output', help: 'record field holding the response' },
  text_field: { type: 'string', default: 'text', help: 'record field holding raw text (text format)' },
  skip_empty_outputs: { type: 'boolean', default: false, help: 'leave out records with an empty response instead of failing' },
};

export function datasetOptionsFromFlags(command: string, flags: ParsedFlags): DatasetOptions {
  const format = flags.data_format as string | undefined;
  if (format !== undefined && !(DATA_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`${command}: --data_format must be one of ${DATA_FORMATS.join(', ')}, got "${format}"`);
  }
  return {
    format: format as DataFormat | undefined,
    instructionField: flags.instruction_field as string,
    inputField: flags.input_field as string,
    outputField: flags.output_field as string,
    textField: flags.text_field as string,
    skipEmptyOutputs: flags.skip_empty_outputs as boolean,
  };
}

export const inspectDataCommand: Command = {
  name: 'inspect-data',
  summary: 'tokenize a data set as finetune would and report lengths, truncation and trained tokens',
  flags: {
    base_model: { type: 'string', help: 'model folder (only its tokenizer files are read)' },
    ...DATA_FLAGS,
    example_index: { type: 'number', default: 0, help: 'which example to show with its masked tokens marked' },
    dump_jsonl: { type: 'string', help: 'write every tokenized example, in data-set order, to this .jsonl file' },
  },
  async run(flags) {
    const tokenizer = loadTokenizer(required('inspect-data', flags, 'base_model'));
    const dataset = await loadDataset(required('inspect-data', flags, 'data_path'), datasetOptionsFromFlags('inspect-data', flags));
    const prompter = Prompter.load(flags.prompt_template_name as string);
    const cutoffLen = flags.cutoff_len as number;
    const toExample = makePromptTokenizer(tokenizer, prompter, {
      cutoffLen,
      trainOnInputs: flags.train_on_inputs as boolean,
      addEosToken: flags.add_eos_token as boolean,
    });
    const examples = tokenizeRecords(dataset.records, toExample, dataset.path);
    const s = summarizeExamples(examples, cutoffLen);
    const pct = (part: number, whole: number) => `${((100 * part) / Math.max(1, whole)).toFixed(1)}%`;
    const skipped = dataset.skipped.length ? `; ${dataset.skipped.length} left out for an empty response` : '';

    console.log(`data set        ${dataset.path}: ${dataset.records.length} records, ${dataset.format} format${skipped}`);
    console.log(`tokenizer       ${tokenizer.source}: vocab ${tokenizer.vocabSize}, bos ${tokenizer.bosId}, eos ${tokenizer.eosId}, pad ${tokenizer.padId ?? 0}`);
    if (dataset.format === 'alpaca') console.log(`template        ${prompter.template.source}: ${prompter.template.description}`);
    console.log(`settings        cutoff_len ${cutoffLen}, train_on_inputs ${flags.train_on_inputs}, add_eos_token ${flags.add_eos_token}`);
    const L = s.lengths;
    console.log(`tokens/example  min ${L.min}  p50 ${L.p50}  p90 ${L.p90}  p95 ${L.p95}  p99 ${L.p99}  max ${L.max}  mean ${L.mean.toFixed(1)}`);
    console.log(`at cutoff_len   ${s.atCutoff} of ${s.examples} examples (${pct(s.atCutoff, s.examples)}) are cut at ${cutoffLen} tokens and carry no EOS`);
    console.log(`trained tokens  ${s.trainedTokens} of ${s.tokens} (${pct(s.trainedTokens, s.tokens)}); ${s.untrainedExamples} examples train on nothing`);

    const index = flags.example_index as number;
    const example = examples[index];
    if (!example) throw new UsageError(`inspect-data: --example_index ${index} is past the last example (${examples.length - 1})`);
    console.log(`\nexample ${index}: ${example.input_ids.length} tokens, ${trainedTokenCount(example)} trained; [[ ]] marks masked tokens (not trained)`);
    console.log(renderExample(tokenizer, example));

    if (typeof flags.dump_jsonl === 'string') {
      await writeTokenizedJsonl(flags.dump_jsonl, examples);
      console.log(`\nwrote ${examples.length} tokenized examples to ${flags.dump_jsonl}`);
    }
  },
};
