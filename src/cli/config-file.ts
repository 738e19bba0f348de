// --config FILE for any command: a JSON or YAML mapping of flag names (snake_case or kebab-case, or the
// LLaMA-Factory / axolotl keys of aliases.ts) to values, turned into `--key=value` arguments that the
// command's own flags then parse, so a file and the command line mean the same. Not the merging (command-line.ts).

import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { UserError } from '../errors.ts';
import { NEAREST, STRUCTURED_KEYS } from './aliases.ts';
import type { FlagSpecs } from './args.ts';
import { nearest } from './did-you-mean.ts';

/** The file's keys as arguments; every unknown key is named on its own line with the nearest known one. */
export function readConfigArgs(command: string, path: string, specs: FlagSpecs): string[] {
  if (!existsSync(path)) throw new UserError(`--config ${path} does not exist`);
  const text = readFileSync(path, 'utf8');
  let value: unknown;
  try {
    value = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new UserError(`--config ${path} is not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UserError(`--config ${path} must hold a mapping of flag names to values`);
  const unknown = Object.keys(value).map((key) => key.replace(/-/g, '_')).filter((key) => !(key in specs) && key !== 'config');
  if (unknown.length) {
    const lines = unknown.map((key) => {
      const near = nearest(key, Object.keys(specs));
      const hint = NEAREST[key] ?? (near ? `did you mean ${near}?` : '');
      return `  ${key}: not a setting of ${command}${hint ? `; ${hint}` : ''}`;
    });
    throw new UserError(`--config ${path} has keys ${command} does not know (\`alpaca-lora ${command} --help\` lists them):\n${lines.join('\n')}`);
  }
  const args: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (key === 'config') throw new UserError(`--config ${path}: a config file cannot name another config file`);
    if (v === null || v === undefined) continue;
    const structured = STRUCTURED_KEYS.includes(key.replace(/-/g, '_'));
    const nested = typeof v === 'object' && (!Array.isArray(v) || v.some((item) => typeof item === 'object' && item !== null));
    if (nested && !structured) throw new UserError(`--config ${path}: "${key}" must be a number, string, boolean or list`);
    args.push(`--${key}=${nested ? JSON.stringify(v) : Array.isArray(v) ? `[${v.join(',')}]` : String(v)}`);
  }
  return args;
}
