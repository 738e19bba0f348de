// Which chat template a run uses, as Jinja source: `--chat_template tokenizer` (the model's own: chat_template.jinja
// beside the tokenizer, else tokenizer_config.json's chat_template), a built-in (llama2, llama3, chatml, alpaca =
// the seed's alpaca prompt applied turn by turn; chat-templates/*.jinja) or a .jinja file. Also the copy saved beside
// an adapter, which generate and serve use by default. Not rendering (chat-renderer.ts).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';

export const BUILT_IN_CHAT_TEMPLATES = ['llama2', 'llama3', 'chatml', 'alpaca'] as const;
const TEMPLATE_DIR = fileURLToPath(new URL('./chat-templates/', import.meta.url));

/** The file an adapter folder keeps its training chat template in (the name transformers saves it under). */
export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';

export interface ChatTemplateChoice {
  /** What --chat_template said, or `tokenizer`. */
  name: string;
  source: string;
}

/** chat_template.jinja in `dir`, else tokenizer_config.json's chat_template (a string or the "default" of a list); null when neither. */
export function tokenizerChatTemplate(dir: string, config: Record<string, unknown>): string | null {
  const file = join(dir, CHAT_TEMPLATE_FILE);
  if (existsSync(file)) return readFileSync(file, 'utf8');
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t.find((x) => (x as { name?: unknown }).name === 'default') as { template?: unknown } | undefined;
    if (typeof named?.template === 'string') return named.template;
  }
  return null;
}

/**
 * The template `--chat_template` names; without one, the tokenizer's when it has one, else `alpaca`.
 * `tokenizerDir` and `config` are the model's tokenizer folder and its tokenizer_config.json.
 */
export function chooseChatTemplate(spec: string | undefined, tokenizerDir: string, config: Record<string, unknown>): ChatTemplateChoice {
  if (spec === undefined || spec === '' || spec === 'tokenizer') {
    const own = tokenizerChatTemplate(tokenizerDir, config);
    if (own !== null) return { name: 'tokenizer', source: own };
    if (spec === 'tokenizer') {
      throw new UserError(
        `--chat_template tokenizer: ${tokenizerDir} has no chat template (no ${CHAT_TEMPLATE_FILE}, no chat_template in tokenizer_config.json): ` +
          `pass one of ${BUILT_IN_CHAT_TEMPLATES.join(', ')} or a .jinja file`,
      );
    }
    return chooseChatTemplate('alpaca', tokenizerDir, config);
  }
  if ((BUILT_IN_CHAT_TEMPLATES as readonly string[]).includes(spec)) return { name: spec, source: readFileSync(join(TEMPLATE_DIR, `${spec}.jinja`), 'utf8') };
  if (existsSync(spec)) return { name: spec, source: readFileSync(spec, 'utf8') };
  throw new UserError(`--chat_template ${spec} is neither tokenizer, a built-in (${BUILT_IN_CHAT_TEMPLATES.join(', ')}) nor an existing .jinja file`);
}

/** Saves the training template beside the adapter (atomically), for generate and serve to find. */
export async function saveChatTemplate(dir: string, source: string): Promise<void> {
  await writeFileAtomic(join(dir, CHAT_TEMPLATE_FILE), source);
}

/** The template saved beside an adapter, or null. */
export function adapterChatTemplate(adapterDir: string): string | null {
  const file = join(adapterDir, CHAT_TEMPLATE_FILE);
  return existsSync(file) ? readFileSync(file, 'utf8') : null;
}
