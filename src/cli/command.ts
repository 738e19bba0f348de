// What a CLI command is: a name, a one-line summary, its flags, and a run function that calls the library.

import type { FlagSpecs, ParsedFlags } from './args.ts';

export interface Command {
  name: string;
  summary: string;
  flags: FlagSpecs;
  run(flags: ParsedFlags, positionals: string[]): Promise<void>;
}
