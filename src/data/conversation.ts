// Conversation records: ShareGPT (`conversations: [{from, value}]`), OpenAI (`messages: [{role, content}]`) and
// Alpaca with LLaMA-Factory's `system` and `history` fields, all turned into one list of {role, content} messages
// and checked (roles known, user/assistant alternating, no empty answer). Not rendering (chat-tokenize.ts).

/** One turn of a conversation, as chat templates take it. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** How a data set's conversation records are laid out: LLaMA-Factory's column and tag names. */
export interface ConversationFields {
  /** The list of turns (default `conversations`, else `messages`). */
  messages?: string;
  /** A turn's role key and text key (default `from`/`value` for sharegpt, `role`/`content` for openai). */
  roleTag?: string;
  contentTag?: string;
  /** Role names in the data (default `human`, `gpt`, `system`); `user`, `assistant` and `system` are always understood. */
  userTag?: string;
  assistantTag?: string;
  systemTag?: string;
  /** Alpaca records' system prompt and [[instruction, response], …] history (default `system`, `history`). */
  system?: string;
  history?: string;
}

/** A record that cannot be trained on: the reason, for an error or a --skip_bad_records count. */
export class BadRecord extends Error {}

/** Messages of a ShareGPT or OpenAI record (`style` picks the default role and text keys). */
export function conversationMessages(record: Record<string, unknown>, style: 'sharegpt' | 'openai', f: ConversationFields): ChatMessage[] {
  const listKey = f.messages ?? ('conversations' in record ? 'conversations' : 'messages');
  const roleKey = f.roleTag ?? (style === 'sharegpt' ? 'from' : 'role');
  const contentKey = f.contentTag ?? (style === 'sharegpt' ? 'value' : 'content');
  const roles = roleNames(f);
  const turns = record[listKey];
  if (!Array.isArray(turns)) {
    throw new BadRecord(`"${listKey}" must be a list of turns, got ${turns === undefined ? 'nothing' : typeof turns} (its fields: ${Object.keys(record).join(', ')}); name yours with --messages_field`);
  }
  const messages = turns.map((turn, i) => {
    if (typeof turn !== 'object' || turn === null) throw new BadRecord(`${listKey}[${i}] is not an object with "${roleKey}" and "${contentKey}"`);
    const t = turn as Record<string, unknown>;
    const name = t[roleKey];
    const role = typeof name === 'string' ? roles.get(name) : undefined;
    if (!role) {
      throw new BadRecord(`${listKey}[${i}].${roleKey} is ${JSON.stringify(name)}, not a known role (${[...roles.keys()].join(', ')}); map yours with --user_tag/--assistant_tag/--system_tag`);
    }
    return { role, content: turnText(t[contentKey], `${listKey}[${i}].${contentKey}`) };
  });
  const system = record[f.system ?? 'system'];
  if (typeof system === 'string' && system !== '' && messages[0]?.role !== 'system') messages.unshift({ role: 'system', content: system });
  return checkConversation(messages);
}

/** An Alpaca record's system prompt and earlier turns (LLaMA-Factory's fields). */
export interface AlpacaChatFields {
  system: string;
  history: [string, string][];
}

/** The record's system prompt and history, present only when not empty. */
export function alpacaChatFields(record: Record<string, unknown>, f: ConversationFields): Partial<AlpacaChatFields> {
  const systemKey = f.system ?? 'system';
  const system = record[systemKey];
  if (system !== undefined && system !== null && typeof system !== 'string') throw new BadRecord(`"${systemKey}" must be a string`);
  const history = historyPairs(record[f.history ?? 'history'], f.history ?? 'history');
  return { ...(system ? { system } : {}), ...(history.length ? { history } : {}) };
}

/** An Alpaca record as messages; instruction and input are joined by a newline, as LLaMA-Factory does. */
export function alpacaMessages(r: { instruction: string; input: string; output: string } & Partial<AlpacaChatFields>): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (r.system) messages.push({ role: 'system', content: r.system });
  for (const [user, assistant] of r.history ?? []) messages.push({ role: 'user', content: user }, { role: 'assistant', content: assistant });
  messages.push({ role: 'user', content: r.input ? `${r.instruction}\n${r.input}` : r.instruction }, { role: 'assistant', content: r.output });
  return checkConversation(messages);
}

function historyPairs(value: unknown, key: string): [string, string][] {
  if (value === undefined || value === null) return [];
  const ok = Array.isArray(value) && value.every((p) => Array.isArray(p) && p.length === 2 && p.every((s) => typeof s === 'string'));
  if (!ok) throw new BadRecord(`"${key}" must be a list of [instruction, response] pairs of strings`);
  return value as [string, string][];
}

function roleNames(f: ConversationFields): Map<string, ChatMessage['role']> {
  return new Map<string, ChatMessage['role']>([
    [f.userTag ?? 'human', 'user'], [f.assistantTag ?? 'gpt', 'assistant'], [f.systemTag ?? 'system', 'system'],
    ['user', 'user'], ['assistant', 'assistant'], ['system', 'system'],
  ]);
}

/** A turn's text: a string, or OpenAI's list of {type: "text", text} parts joined; null for anything else. */
export function contentText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  const parts = Array.isArray(value) ? value : [];
  if (parts.length > 0 && parts.every((p) => (p as { type?: unknown })?.type === 'text' && typeof (p as { text?: unknown }).text === 'string')) {
    return parts.map((p) => (p as { text: string }).text).join('');
  }
  return null;
}

function turnText(value: unknown, where: string): string {
  const text = contentText(value);
  if (text === null) throw new BadRecord(`${where} must be a string or a list of {"type": "text", "text": …} parts`);
  return text;
}

/**
 * The shape every template here expects: an optional system message first, then user and assistant turns
 * alternating from user, ending with an assistant turn whose text is not empty.
 */
export function checkConversation(messages: ChatMessage[]): ChatMessage[] {
  const turns = messages[0]?.role === 'system' ? messages.slice(1) : messages;
  if (turns.length === 0) throw new BadRecord('the conversation has no user or assistant turn');
  turns.forEach((m, i) => {
    const expected = i % 2 === 0 ? 'user' : 'assistant';
    if (m.role !== expected) {
      throw new BadRecord(`turn ${i} is "${m.role}" where "${expected}" was due: turns must alternate user/assistant (one system message may come first)`);
    }
    if (m.role === 'assistant' && m.content.trim() === '') throw new BadRecord(`assistant turn ${i} is empty: every answer needs text to train on`);
  });
  if (turns.at(-1)!.role !== 'assistant') throw new BadRecord('the conversation ends with a user turn: it needs an assistant answer to train on');
  return messages;
}
