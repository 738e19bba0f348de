// Prompt templates (alpaca-lora's templates/*.json) and the Prompter that fills them, as the seed's
// utils/prompter.py does. Not tokenization (see tokenize.ts).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';

export interface PromptTemplate {
  /** The built-in name or the file it was read from. */
  source: string;
  description: string;
  prompt_input: string;
  prompt_no_input: string;
  response_split: string;
}

export const BUILT_IN_TEMPLATES = ['alpaca', 'alpaca_legacy', 'alpaca_short', 'vigogne'] as const;
const TEMPLATE_DIR = fileURLToPath(new URL('./templates/', import.meta.url));

/**
 * A built-in template by name, or a JSON template file by path; a bare name also finds
 * `templates/<name>.json` under the working directory, as the seed does.
 */
export function loadTemplate(nameOrPath = 'alpaca'): PromptTemplate {
  const name = nameOrPath === '' ? 'alpaca' : nameOrPath;
  if ((BUILT_IN_TEMPLATES as readonly string[]).includes(name)) return readTemplate(join(TEMPLATE_DIR, `${name}.json`), name);
  if (existsSync(name)) return readTemplate(name, name);
  const local = join('templates', `${name}.json`);
  if (existsSync(local)) return readTemplate(local, local);
  throw new UserError(
    `prompt template "${name}" is neither a built-in (${BUILT_IN_TEMPLATES.join(', ')}) nor a JSON file: ` +
      'pass one of those names or the path to a template with prompt_input, prompt_no_input and response_split',
  );
}

function readTemplate(path: string, source: string): PromptTemplate {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UserError(`prompt template ${path} is not valid JSON: ${(err as Error).message}`);
  }
  for (const key of ['prompt_input', 'prompt_no_input', 'response_split']) {
    if (typeof json[key] !== 'string') throw new UserError(`prompt template ${path}: "${key}" must be a string`);
  }
  const template: PromptTemplate = {
    source,
    description: typeof json.description === 'string' ? json.description : '',
    prompt_input: json.prompt_input as string,
    prompt_no_input: json.prompt_no_input as string,
    response_split: json.response_split as string,
  };
  formatPrompt(template.prompt_input, { instruction: '', input: '' }, `${path} prompt_input`);
  formatPrompt(template.prompt_no_input, { instruction: '' }, `${path} prompt_no_input`);
  return template;
}

/** Python's str.format for `{name}` fields and `{{` / `}}` escapes; values are not re-scanned. */
export function formatPrompt(pattern: string, values: Record<string, string>, what: string): string {
  return pattern.replace(/\{\{|\}\}|\{([^{}]*)\}|[{}]/g, (match, field: string | undefined) => {
    if (match === '{{') return '{';
    if (match === '}}') return '}';
    if (field === undefined) throw new UserError(`${what}: unmatched "${match}" (write {{ or }} for a literal brace)`);
    const value = values[field];
    if (value === undefined) throw new UserError(`${what}: unknown field {${field}} (allowed: ${Object.keys(values).map((k) => `{${k}}`).join(', ')})`);
    return value;
  });
}

export class Prompter {
  constructor(readonly template: PromptTemplate) {}

  static load(nameOrPath?: string): Prompter {
    return new Prompter(loadTemplate(nameOrPath));
  }

  /** The prompt for an instruction and optional input; the label (the response) is appended when given. */
  generatePrompt(instruction: string, input?: string | null, label?: string | null): string {
    const t = this.template;
    const prompt = input
      ? formatPrompt(t.prompt_input, { instruction, input }, `${t.source} prompt_input`)
      : formatPrompt(t.prompt_no_input, { instruction }, `${t.source} prompt_no_input`);
    return label ? prompt + label : prompt;
  }

  /** The model's answer inside generated text: what follows the first response_split, trimmed. */
  getResponse(output: string): string {
    const parts = output.split(this.template.response_split);
    if (parts.length < 2) throw new Error(`generated text has no "${this.template.response_split}" to split the response at`);
    return parts[1]!.trim();
  }
}
