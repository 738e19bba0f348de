// What a CLI command is: a name, a one-line summary, its flags, and a run function that calls the library.

import type { FlagSpecs, ParsedFlags } from './args.ts';

export interface Command {
  name: string;
  summary: string;
  flags: FlagSpecs;
  /** The arguments it takes besides flags, for the usage line (e.g. 'TEXT...'); without it, a stray one is an error. */
  positionals?: string;
  /** `flags`: every flag, defaults filled in; `given`: only those the command line and config file set. */
  run(flags: ParsedFlags, positionals: string[], given: ParsedFlags): Promise<void>;
}
