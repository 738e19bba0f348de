// `alpaca-lora inspect-data`: tokenizes the data set(s) exactly as finetune would (same loading, mixing, templates
// and masks) and reports lengths, truncation and trained tokens, shows one example with its masked tokens
// marked, and can dump the rows (--dump_jsonl). Parsing and printing only; the work is src/data.

import { cutoffWarning } from '../data/cutoff-report.ts';
import { badRecordsWarning } from '../data/dataset.ts';
import { loadDataSources, mixRecords, parseInterleaveProbs } from '../data/data-sources.ts';
import { makeExampleBuilder } from '../data/examples.ts';
import { renderExample, summarizeExamples } from '../data/inspect.ts';
import { Prompter } from '../data/prompter.ts';
import { requireTrainedTokens, trainedTokenCount } from '../data/tokenize.ts';
import { writeTokenizedJsonl } from '../data/tokenized-jsonl.ts';
import { resolveDataFiles } from '../hub/resolve.ts';
import { loadTokenizerWith } from '../tokenizer/load.ts';
import { required, UsageError } from './args.ts';
import type { Command } from './command.ts';
import { DATA_FLAGS, datasetOptionsFromFlags, interleaveProbsFromFlags } from './data-flags.ts';

export const inspectDataCommand: Command = {
  name: 'inspect-data',
  summary: 'tokenize a data set as finetune would and report lengths, truncation and trained tokens',
  flags: {
    base_model: { type: 'string', help: 'model folder (only its tokenizer files are read)' },
    new_special_tokens: { type: 'list', default: [], help: 'as finetune\'s: tokenize with these special tokens added' },
    ...DATA_FLAGS,
    example_index: { type: 'number', default: 0, help: 'which example to show with its masked tokens marked' },
    dump_jsonl: { type: 'string', help: 'write every tokenized example, in data-set order, to this .jsonl file' },
  },
  async run(flags) {
    const baseModel = required('inspect-data', flags, 'base_model');
    const { tokenizer } = loadTokenizerWith(baseModel, flags.new_special_tokens as string[]);
    const notes: string[] = [];
    const options = { ...datasetOptionsFromFlags('inspect-data', flags), warn: (m: string) => notes.push(m) };
    const resolve = (path: string) => resolveDataFiles(path, (line) => console.error(line));
    const datasets = await loadDataSources(required('inspect-data', flags, 'data_path'), options, flags.data_columns as string | undefined, resolve);
    const probs = interleaveProbsFromFlags('inspect-data', flags);
    const records = mixRecords(datasets, probs && parseInterleaveProbs(probs, datasets.length), 42);
    const cutoffLen = flags.cutoff_len as number;
    const builder = makeExampleBuilder(tokenizer, {
      cutoffLen, trainOnInputs: (flags.train_on_inputs as boolean | undefined) ?? null, addEosToken: flags.add_eos_token as boolean,
      promptTemplateName: flags.prompt_template_name as string, chatTemplate: (flags.chat_template as string | undefined) || undefined,
      tokenizerDir: baseModel, skipBadRecords: options.skipBadRecords,
    }, records);
    const source = datasets.map((d) => d.path).join(', ');
    let built;
    try {
      built = await builder.build(records);
    } finally {
      await builder.close();
    }
    const examples = requireTrainedTokens(built.examples, source);
    if (built.bad.length) notes.push(badRecordsWarning(source, built.bad, records.length));
    const s = summarizeExamples(examples, cutoffLen);
    const pct = (part: number, whole: number) => `${((100 * part) / Math.max(1, whole)).toFixed(1)}%`;

    for (const d of datasets) {
      const skipped = d.skipped.length ? `; ${d.skipped.length} left out for an empty response` : '';
      const bad = d.bad.length ? `; ${d.bad.length} bad records left out` : '';
      console.log(`data set        ${d.path}: ${d.records.length} records, ${d.format} format${skipped}${bad}`);
    }
    if (datasets.length > 1) console.log(`mixed           ${records.length} records (${probs ? `interleaved ${probs.join(',')}, seed 42` : 'concatenated'})`);
    console.log(`tokenizer       ${tokenizer.source}: vocab ${tokenizer.vocabSize}, bos ${tokenizer.bosId}, eos ${tokenizer.eosId}, pad ${tokenizer.padId ?? 0}`);
    const chat = builder.chatTemplate;
    if (chat) console.log(`chat template   ${chat.name}: conversations rendered with it; ${builder.trainOnInputs ? 'every token trains' : 'only assistant turns (and their end-of-turn tokens) train'}`);
    else if (datasets.some((d) => d.format === 'alpaca')) {
      const prompter = Prompter.load(flags.prompt_template_name as string);
      console.log(`template        ${prompter.template.source}: ${prompter.template.description}`);
    }
    console.log(`settings        cutoff_len ${cutoffLen}, train_on_inputs ${builder.trainOnInputs}, add_eos_token ${flags.add_eos_token}`);
    const L = s.lengths;
    console.log(`tokens/example  min ${L.min}  p50 ${L.p50}  p90 ${L.p90}  p95 ${L.p95}  p99 ${L.p99}  max ${L.max}  mean ${L.mean.toFixed(1)}`);
    console.log(`at cutoff_len   ${s.atCutoff} of ${s.examples} examples (${pct(s.atCutoff, s.examples)}) are cut at ${cutoffLen} tokens and carry no EOS`);
    const dropped = examples.reduce((n, e) => n + ((e as { droppedTurns?: number }).droppedTurns ?? 0), 0);
    if (chat) console.log(`dropped turns   ${dropped} trailing assistant turns left out to fit cutoff_len (whole turns are dropped, not cut)`);
    console.log(`trained tokens  ${s.trainedTokens} of ${s.tokens} (${pct(s.trainedTokens, s.tokens)}); ${s.untrainedExamples} examples train on nothing`);
    const cut = cutoffWarning(examples, cutoffLen, source);
    if (cut) notes.push(cut);
    for (const note of notes) console.log(`warning         ${note}`);

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
