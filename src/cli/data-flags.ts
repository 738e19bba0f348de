// The flags that choose and shape the training data (shared by finetune and inspect-data), with the seed's
// defaults, and their reading into the data library's options. Parsing only; the work is src/data.

import { BUILT_IN_CHAT_TEMPLATES } from '../data/chat-template-source.ts';
import { DATA_FORMATS, type DatasetOptions } from '../data/dataset.ts';
import { DATA_COLUMN_KEYS, withColumns } from '../data/data-sources.ts';
import { UserError } from '../errors.ts';
import { UsageError, type FlagSpecs, type ParsedFlags } from './args.ts';

export const DATA_FLAGS: FlagSpecs = {
  data_path: { type: 'string', help: '.json (array), .jsonl, .parquet or .txt data file, or a Hub data set id; several: a.json,b.jsonl' },
  prompt_template_name: { type: 'string', default: 'alpaca', help: 'alpaca, alpaca_legacy, alpaca_short, vigogne, or a template .json path (plain Alpaca records)' },
  chat_template: {
    type: 'string',
    help: `how conversations are rendered: tokenizer (the model's chat_template), ${BUILT_IN_CHAT_TEMPLATES.join(', ')} (alpaca: the seed's prompt turn by turn) or a .jinja file; ` +
      'given, Alpaca records are rendered as conversations too (default: the tokenizer\'s when it has one, else alpaca; only for chat data)',
  },
  cutoff_len: { type: 'number', default: 256, help: 'truncate every example to this many tokens (conversations: whole trailing turns are dropped)' },
  train_on_inputs: { type: 'boolean', help: 'train on the prompt too; false: only on responses (default: true for plain Alpaca records as the seed, false for chat data)' },
  add_eos_token: { type: 'boolean', default: false, help: 'the seed\'s add_eos_token (counts the masked prompt with an EOS)' },
  data_format: { type: 'string', help: `${DATA_FORMATS.join(', ')} (default: from the first record)` },
  instruction_field: { type: 'string', default: 'instruction', help: 'record field holding the instruction' },
  input_field: { type: 'string', default: 'input', help: 'record field holding the optional input' },
  output_field: { type: 'string', default: 'output', help: 'record field holding the response' },
  text_field: { type: 'string', default: 'text', help: 'record field holding raw text (text format)' },
  system_field: { type: 'string', help: 'record field holding a system prompt (default: system)' },
  history_field: { type: 'string', help: 'Alpaca records\' field of earlier [instruction, response] pairs (default: history)' },
  messages_field: { type: 'string', help: 'record field holding the list of turns (default: conversations, else messages)' },
  role_tag: { type: 'string', help: 'a turn\'s role key (default: from for sharegpt, role for openai)' },
  content_tag: { type: 'string', help: 'a turn\'s text key (default: value for sharegpt, content for openai)' },
  user_tag: { type: 'string', help: 'role name of user turns (default: human; user is always understood)' },
  assistant_tag: { type: 'string', help: 'role name of assistant turns (default: gpt; assistant is always understood)' },
  system_tag: { type: 'string', help: 'role name of system turns (default: system)' },
  data_columns: { type: 'string', help: `per data set column settings, JSON (or YAML in --config): {"<data path>": {${DATA_COLUMN_KEYS.slice(0, 3).join(', ')}, …}}` },
  interleave_probs: { type: 'list', help: 'with several data sets: the probability of drawing each next record from each, e.g. 0.7,0.3, until the first runs out (default: concatenate)' },
  skip_empty_outputs: { type: 'boolean', default: false, help: 'leave out records with an empty response instead of failing' },
  skip_bad_records: { type: 'boolean', default: false, help: 'leave out (and count) records that cannot be trained on — bad roles, empty answers, a template that refuses them — instead of failing' },
};

const COLUMN_FLAGS = ['data_format', 'instruction_field', 'input_field', 'output_field', 'text_field', 'system_field', 'history_field',
  'messages_field', 'role_tag', 'content_tag', 'user_tag', 'assistant_tag', 'system_tag'];

export function datasetOptionsFromFlags(command: string, flags: ParsedFlags): DatasetOptions {
  const given = Object.fromEntries(COLUMN_FLAGS.filter((f) => flags[f] !== undefined).map((f) => [f, flags[f]]));
  try {
    return { ...withColumns({}, given, command), skipEmptyOutputs: flags.skip_empty_outputs as boolean, skipBadRecords: flags.skip_bad_records as boolean };
  } catch (err) {
    if (err instanceof UserError) throw new UsageError(`${command}: --data_format must be one of ${DATA_FORMATS.join(', ')}, got "${flags.data_format}"`);
    throw err;
  }
}

/** --interleave_probs as numbers, or null when not given. */
export function interleaveProbsFromFlags(command: string, flags: ParsedFlags): number[] | null {
  const list = flags.interleave_probs as string[] | undefined;
  if (list === undefined || list.length === 0) return null;
  return list.map((s) => {
    const n = Number(s);
    if (!Number.isFinite(n)) throw new UsageError(`${command}: --interleave_probs must be numbers like 0.7,0.3, got "${s}"`);
    return n;
  });
}
