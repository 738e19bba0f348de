// Entry point of `alpaca-lora <command>`: picks the command, parses its flags, runs it, and turns
// errors into a message and a non-zero exit code.

import { UsageError } from './args.ts';
import type { Command } from './command.ts';
import { helpText, parseCommandLine } from './command-line.ts';
import { commands } from './commands.ts';
import { describeError } from './known-errors.ts';
import { nearest } from './did-you-mean.ts';

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log('usage: alpaca-lora <command> [flags]\n\ncommands:');
    for (const c of commands) console.log(`  ${c.name.padEnd(18)} ${c.summary}`);
    return name ? 0 : 1;
  }
  const command: Command | undefined = commands.find((c) => c.name === name);
  if (!command) {
    const near = nearest(name, commands.map((c) => c.name));
    console.error(`alpaca-lora: unknown command "${name}"${near ? `; did you mean ${near}?` : ''} (commands: ${commands.map((c) => c.name).join(', ')})`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(helpText(command));
    return 0;
  }
  const { flags, positionals, given } = parseCommandLine(command, rest, commands);
  await command.run(flags, positionals, given);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError || (err instanceof Error && err.name === 'UserError')) {
      console.error(`error: ${err.message}`);
    } else {
      const known = describeError(err);
      console.error(known !== null ? `error: ${known}` : err instanceof Error ? err.stack ?? err.message : String(err));
    }
    process.exit(1);
  },
);
