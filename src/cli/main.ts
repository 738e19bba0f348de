// Entry point of `alpaca-lora <command>`: picks the command, parses its flags, runs it, and turns
// errors into a message and a non-zero exit code.

import { formatHelp, parseFlags, UsageError } from './args.ts';
import type { Command } from './command.ts';
import { commands } from './commands.ts';
import { describeError } from './known-errors.ts';

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log('usage: alpaca-lora <command> [flags]\n\ncommands:');
    for (const c of commands) console.log(`  ${c.name.padEnd(18)} ${c.summary}`);
    return name ? 0 : 1;
  }
  const command: Command | undefined = commands.find((c) => c.name === name);
  if (!command) {
    console.error(`alpaca-lora: unknown command "${name}"; commands: ${commands.map((c) => c.name).join(', ')}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(formatHelp(command.name, command.summary, command.flags));
    return 0;
  }
  const { flags, positionals } = parseFlags(command.name, rest, command.flags);
  await command.run(flags, positionals);
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
