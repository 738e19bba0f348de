// Flag parsing shared by every command: snake_case and kebab-case spellings are the same flag,
// `--flag value` and `--flag=value` both work, and an unknown flag is an error that names it.
// Built on node:util parseArgs; this file only normalises names and converts types.

import { parseArgs } from 'node:util';
import { nearest } from './did-you-mean.ts';

export type FlagType = 'string' | 'number' | 'boolean' | 'list';

export interface FlagSpec {
  type: FlagType;
  default?: string | number | boolean | string[];
  help: string;
  /** The --help section it is listed in (e.g. 'LoRA'); ungrouped flags come first. */
  group?: string;
}

export type FlagSpecs = Record<string, FlagSpec>; // keys in snake_case
export type ParsedFlags = Record<string, string | number | boolean | string[] | undefined>;

export class UsageError extends Error {}

const kebab = (name: string) => name.replace(/_/g, '-');

/**
 * Parses argv against specs. Booleans accept `--x`, `--x true|false`, `--no_x`. Lists accept `[a,b]` or `a,b`,
 * and a repeated list flag adds up; any other flag given twice is an error.
 */
export function parseFlags(command: string, argv: string[], specs: FlagSpecs): { flags: ParsedFlags; positionals: string[] } {
  const normalised: string[] = [];
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      normalised.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    let name = (eq >= 0 ? arg.slice(2, eq) : arg.slice(2)).replace(/-/g, '_');
    let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    if (!(name in specs) && name.startsWith('no_') && specs[name.slice(3)]?.type === 'boolean') {
      name = name.slice(3);
      value = 'false';
    }
    const spec = specs[name];
    if (!spec) {
      const near = nearest(name, Object.keys(specs));
      throw new UsageError(`${command}: unknown flag --${name}${near ? `; did you mean --${near}?` : ''} (\`alpaca-lora ${command} --help\` lists the flags)`);
    }
    if (spec.type !== 'list' && given.has(name)) {
      throw new UsageError(`${command}: --${name} is given more than once; pass it once (only list flags such as --lora_target_modules add up)`);
    }
    given.add(name);
    if (spec.type === 'boolean') {
      const next = argv[i + 1];
      if (value === undefined && (next === 'true' || next === 'false' || next === 'True' || next === 'False')) {
        value = next;
        i++;
      }
      normalised.push(`--${kebab(name)}=${(value ?? 'true').toLowerCase()}`);
    } else {
      if (value === undefined) {
        value = argv[++i];
        if (value === undefined) throw new UsageError(`${command}: flag --${name} needs a value`);
      }
      normalised.push(`--${kebab(name)}=${value}`);
    }
  }
  const options: Record<string, { type: 'string'; multiple: true }> = {};
  for (const name of Object.keys(specs)) options[kebab(name)] = { type: 'string', multiple: true };
  const { values, positionals } = parseArgs({ args: normalised, options, allowPositionals: true, strict: true });
  const flags: ParsedFlags = {};
  for (const [name, spec] of Object.entries(specs)) {
    const raw = values[kebab(name)] as string[] | undefined;
    flags[name] = raw === undefined ? spec.default : spec.type === 'list' ? raw.flatMap((r) => convert(command, name, 'list', r) as string[]) : convert(command, name, spec.type, raw[0]!);
  }
  return { flags, positionals };
}

function convert(command: string, name: string, type: FlagType, raw: string): string | number | boolean | string[] {
  switch (type) {
    case 'string':
      return raw;
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${command}: --${name} must be a number, got "${raw}"`);
      return n;
    }
    case 'boolean':
      if (raw === 'true') return true;
      if (raw === 'false') return false;
      throw new UsageError(`${command}: --${name} must be true or false, got "${raw}"`);
    case 'list':
      return raw.replace(/^\[|\]$/g, '').split(',').map((s) => s.trim().replace(/^['"]|['"]$/g, '')).filter((s) => s.length > 0);
  }
}

/** A default as every help text shows it: `3e-4`, `alpaca`, `true`, `[q_proj,v_proj]`; null for none, '' or []. */
export function formatDefault(value: FlagSpec['default']): string | null {
  if (value === undefined || value === '' || (Array.isArray(value) && value.length === 0)) return null;
  return Array.isArray(value) ? `[${value.join(',')}]` : String(value);
}

/** One flag's help line, its default last as `(default: X)` unless the help already says it in words. */
function helpLine(name: string, spec: FlagSpec): string {
  const def = formatDefault(spec.default);
  return `  --${name.padEnd(26)} ${spec.help}${def === null || spec.help.includes('(default: ') ? '' : ` (default: ${def})`}`;
}

/** Help text for a command's flags: ungrouped ones first, then one section per group in order of appearance. */
export function formatHelp(command: string, summary: string, specs: FlagSpecs): string {
  const lines = [`alpaca-lora ${command}: ${summary}`, '', 'Flags (snake_case or kebab-case):'];
  const entries = Object.entries(specs);
  for (const [name, spec] of entries) if (spec.group === undefined) lines.push(helpLine(name, spec));
  for (const group of new Set(entries.map(([, spec]) => spec.group).filter((g) => g !== undefined))) {
    lines.push('', `${group[0]!.toUpperCase()}${group.slice(1)}:`);
    for (const [name, spec] of entries) if (spec.group === group) lines.push(helpLine(name, spec));
  }
  return lines.join('\n');
}

/** The specs with each listed flag in its section, in the sections' order; flags no section names stay first, ungrouped. */
export function withGroups(specs: FlagSpecs, sections: readonly (readonly [string, readonly string[]])[]): FlagSpecs {
  const listed = new Set(sections.flatMap(([, names]) => names));
  const out: FlagSpecs = Object.fromEntries(Object.entries(specs).filter(([name]) => !listed.has(name)));
  for (const [group, names] of sections) for (const name of names) if (specs[name]) out[name] = { ...specs[name], group };
  return out;
}

/** A required string flag, or a UsageError naming it (and `hint`: another way to give it). */
export function required(command: string, flags: ParsedFlags, name: string, hint = ''): string {
  const v = flags[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`${command}: --${name} is required${hint}`);
  return v;
}
