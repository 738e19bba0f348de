// `alpaca-lora tokenize`: shows the ids (or, with --decode, the text) the model sees for a string.
// Parsing and printing only; the work is src/tokenizer.

import { UserError } from '../errors.ts';
import { loadTokenizer } from '../tokenizer/load.ts';
import { required, UsageError } from './args.ts';
import type { Command } from './command.ts';

export const tokenizeCommand: Command = {
  name: 'tokenize',
  summary: 'print the token ids of each TEXT (one JSON array per text), or decode ids with --decode',
  positionals: 'TEXT...',
  flags: {
    base_model: { type: 'string', help: 'model folder with tokenizer.json or tokenizer.model' },
    bos: { type: 'boolean', default: true, help: 'prepend BOS as LlamaTokenizer does (--no_bos to leave it out)' },
    eos: { type: 'boolean', default: false, help: 'append EOS' },
    pieces: { type: 'boolean', default: false, help: 'also print each text\'s pieces as a JSON array, on the next line' },
    decode: { type: 'string', help: 'comma-separated ids to turn back into text, e.g. 1,15043,3186' },
  },
  async run(flags, positionals) {
    const tokenizer = loadTokenizer(required('tokenize', flags, 'base_model'));
    if (typeof flags.decode === 'string') {
      if (positionals.length > 0) throw new UsageError('tokenize: give either TEXT arguments or --decode, not both');
      console.log(tokenizer.decode(parseIds(flags.decode)));
      return;
    }
    if (positionals.length === 0) throw new UsageError('tokenize: give one or more TEXT arguments, or --decode ID,ID,…');
    for (const text of positionals) {
      const ids = tokenizer.encode(text, { addBos: flags.bos as boolean, addEos: flags.eos as boolean });
      console.log(JSON.stringify(ids));
      if (flags.pieces) console.log(JSON.stringify(ids.map((id) => tokenizer.idToPiece(id))));
    }
  },
};

function parseIds(list: string): number[] {
  const parts = list.replace(/^\s*\[|\]\s*$/g, '').split(/[\s,]+/).filter((s) => s !== '');
  return parts.map((part) => {
    const id = Number(part);
    if (!Number.isInteger(id) || id < 0) throw new UserError(`--decode: "${part}" is not a token id (ids are whole numbers ≥ 0)`);
    return id;
  });
}
