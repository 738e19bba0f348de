// A command's arguments as the flags it runs with: the command line over its --config file (or a lone
// positional config.yaml), the LLaMA-Factory / axolotl aliases mapped to our flags, then the defaults.
// Also the help text that lists those aliases. Not the flag syntax itself (args.ts).

import { AGREEING, ALIASES, UNSUPPORTED, type Alias } from './aliases.ts';
import { formatHelp, parseFlags, UsageError, type FlagSpecs, type ParsedFlags } from './args.ts';
import type { Command } from './command.ts';
import { readConfigArgs } from './config-file.ts';
import { UserError } from '../errors.ts';

const CONFIG_FILE = /\.(ya?ml|json)$/i;

export interface CommandLine {
  /** Every flag: given ones, then defaults. */
  flags: ParsedFlags;
  /** Only the flags given (command line and config file), in our names. */
  given: ParsedFlags;
  positionals: string[];
}

/** The command's flags, with --config, as its help lists them. */
function ownSpecs(command: Command): FlagSpecs {
  return { ...command.flags, config: command.flags.config ?? { type: 'string', help: 'JSON or YAML file of flags (also as the only argument: `alpaca-lora CMD x.yaml`); the command line wins' } };
}

/** The other tools' keys that apply to this command (those whose flag it has). */
function aliasesOf(specs: FlagSpecs): Alias[] {
  return ALIASES.filter((a) => a.flag in specs && !(a.key in specs));
}

const trains = (specs: FlagSpecs) => 'lora_r' in specs;

/** What the parser accepts: our flags, the aliases, and the keys it answers with a sentence. */
function parseSpecs(specs: FlagSpecs): FlagSpecs {
  const out: FlagSpecs = Object.fromEntries(Object.entries(specs).map(([name, s]) => [name, { type: s.type, help: s.help }]));
  for (const a of aliasesOf(specs)) out[a.key] = { type: a.type, help: a.help };
  if (trains(specs)) for (const [key, value] of Object.entries(AGREEING)) out[key] ??= { type: value === 'true' ? 'boolean' : 'string', help: `accepted as ${value}` };
  if ('base_model' in specs) for (const key of Object.keys(UNSUPPORTED)) out[key] ??= { type: 'boolean', help: UNSUPPORTED[key]! };
  return out;
}

const defined = (flags: ParsedFlags): ParsedFlags => Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The given flags with the other tools' keys turned into ours (a clash between two spellings is an error). */
function resolveAliases(command: string, merged: ParsedFlags, specs: FlagSpecs): ParsedFlags {
  const foreign = new Set([...ALIASES.map((a) => a.key), ...Object.keys(AGREEING), ...Object.keys(UNSUPPORTED)].filter((k) => !(k in specs)));
  const given: ParsedFlags = Object.fromEntries(Object.entries(merged).filter(([k]) => !foreign.has(k)));
  for (const [key, value] of Object.entries(merged)) {
    if (key in AGREEING && !foreign.has(key)) continue;
    if (key in AGREEING && String(value) !== AGREEING[key]) throw new UsageError(`${command}: ${key} ${value} is not supported; ${command} does ${key} ${AGREEING[key]} only`);
    if (key in UNSUPPORTED && foreign.has(key) && value === true) throw new UsageError(`${command}: ${key} is ${UNSUPPORTED[key]}`);
  }
  const get = (flag: string) => given[flag] ?? specs[flag]?.default;
  for (const alias of aliasesOf(specs)) {
    const value = merged[alias.key];
    if (value === undefined) continue;
    for (const [flag, v] of Object.entries(alias.to(value, get))) {
      if (given[flag] !== undefined && !same(given[flag], v)) {
        throw new UsageError(`${command}: ${alias.key} ${JSON.stringify(value)} sets --${flag} ${JSON.stringify(v)}, but --${flag} is ${JSON.stringify(given[flag])}: give one of them`);
      }
      given[flag] = v;
    }
  }
  return given;
}

/** A flag this command lacks but others take is named with them (`generate --share_gradio`: serve takes it). */
function checkElsewhere(command: Command, argv: string[], accepted: FlagSpecs, all: readonly Command[]): void {
  for (const arg of argv) {
    const name = /^--([^=]+)/.exec(arg)?.[1]?.replace(/-/g, '_');
    if (name === undefined || name in accepted || name.replace(/^no_/, '') in accepted) continue;
    const takers = all.filter((c) => c !== command && name in c.flags).map((c) => c.name);
    if (takers.length) throw new UsageError(`${command.name}: --${name} is not a flag of ${command.name}; ${takers.join(', ')} ${takers.length > 1 ? 'take' : 'takes'} it (\`alpaca-lora ${takers[0]} --help\`)`);
  }
}

/** Parses `argv` for `command`: flags, a --config file (or a lone .yaml/.yml/.json argument), aliases, defaults. */
export function parseCommandLine(command: Command, argv: string[], all: readonly Command[] = []): CommandLine {
  const specs = ownSpecs(command);
  const accepted = parseSpecs(specs);
  checkElsewhere(command, argv, accepted, all);
  const { flags: cli, positionals } = parseFlags(command.name, argv, accepted);
  let config = cli.config as string | undefined;
  if (!command.positionals && positionals.length > 0) {
    if (positionals.length === 1 && config === undefined && CONFIG_FILE.test(positionals[0]!)) {
      config = positionals[0]!;
    } else {
      throw new UsageError(`${command.name}: unexpected argument "${positionals[0]}": flags start with -- (a config file as the only argument ends in .yaml, .yml or .json)`);
    }
  }
  let fromFile: ParsedFlags = {};
  if (config !== undefined) {
    try {
      fromFile = parseFlags(command.name, readConfigArgs(command.name, config, accepted), accepted).flags;
    } catch (err) {
      if (err instanceof UsageError) throw new UserError(`--config ${config}: ${err.message}`);
      throw err;
    }
  }
  const given = resolveAliases(command.name, { ...defined(fromFile), ...defined(cli) }, specs);
  delete given.config;
  const defaults = Object.fromEntries(Object.entries(specs).map(([name, s]) => [name, s.default]));
  return { flags: { ...defaults, ...given }, given, positionals: command.positionals ? positionals : [] };
}

/** `alpaca-lora CMD --help`: the flags with their defaults, then the other tools' keys it accepts. */
export function helpText(command: Command): string {
  const specs = ownSpecs(command);
  const aliases = aliasesOf(specs);
  const lines = [formatHelp(command.name, command.summary, specs)];
  if (command.positionals) lines.splice(0, 0, `usage: alpaca-lora ${command.name} [flags] ${command.positionals}`);
  if (aliases.length) {
    lines.push('', 'Also accepted (the keys of LLaMA-Factory and axolotl configs):');
    for (const a of aliases) lines.push(`  ${`--${a.key}`.padEnd(28)} ${a.help} (${a.from})`);
  }
  return lines.join('\n');
}
