// --config FILE for any command: a JSON or YAML mapping of flag names (snake_case or kebab-case) to values,
// turned into flags and parsed by the command's own specs, so a file and the command line mean the same.

import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { UserError } from '../errors.ts';
import { parseFlags, UsageError, type FlagSpecs, type ParsedFlags } from './args.ts';

/** The flags a config file sets (only those; absent keys stay undefined). */
export function readConfigFlags(command: string, path: string, specs: FlagSpecs): ParsedFlags {
  if (!existsSync(path)) throw new UserError(`--config ${path} does not exist`);
  const text = readFileSync(path, 'utf8');
  let value: unknown;
  try {
    value = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new UserError(`--config ${path} is not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UserError(`--config ${path} must hold a mapping of flag names to values`);
  const argv: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (key === 'config') throw new UserError(`--config ${path}: a config file cannot name another config file`);
    if (v === null || v === undefined) continue;
    if (typeof v === 'object' && !Array.isArray(v)) throw new UserError(`--config ${path}: "${key}" must be a number, string, boolean or list`);
    argv.push(`--${key}=${Array.isArray(v) ? `[${v.join(',')}]` : String(v)}`);
  }
  try {
    return parseFlags(command, argv, specs).flags;
  } catch (err) {
    if (err instanceof UsageError) throw new UserError(`--config ${path}: ${err.message}`);
    throw err;
  }
}
