// OpenAI chat messages to a prompt: the tokenizer's chat template (Jinja, through @huggingface/jinja) when
// the model has one; else the prompt template, whose instruction is the conversation's one user message
// (system messages are ignored: alpaca's templates have no place for them). Not tokenization or generation.

import { Template } from '@huggingface/jinja';
import type { Runtime } from '../generate/runtime.ts';
import { RequestError } from './request-error.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatPrompt {
  text: string;
  addBos: boolean; // a chat template writes its own BOS text; the prompt template needs the tokenizer's
  stop: string[]; // stop strings the format implies
}

const ROLES = ['system', 'user', 'assistant'];

/** Checks `messages`: a non-empty list of {role, content}, content a string or a list of text parts. */
export function parseMessages(value: unknown, maxMessages: number): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > maxMessages) {
    throw new RequestError(`"messages" must be a list of 1 to ${maxMessages} messages`, 'messages');
  }
  return value.map((m, i) => {
    const where = `messages[${i}]`;
    if (typeof m !== 'object' || m === null) throw new RequestError(`${where} must be an object with "role" and "content"`, where);
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (typeof role !== 'string' || !ROLES.includes(role)) throw new RequestError(`${where}.role must be one of ${ROLES.join(', ')}`, `${where}.role`);
    return { role: role as ChatMessage['role'], content: contentText(content, `${where}.content`) };
  });
}

function contentText(content: unknown, where: string): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content) && content.every((p) => (p as { type?: unknown })?.type === 'text' && typeof (p as { text?: unknown }).text === 'string')) {
    return content.map((p) => (p as { text: string }).text).join('');
  }
  throw new RequestError(`${where} must be a string or a list of {"type": "text", "text": …} parts`, where);
}

const compiled = new Map<string, Template>();

export function chatPrompt(rt: Runtime, messages: ChatMessage[]): ChatPrompt {
  if (rt.chatTemplate !== null) {
    let template = compiled.get(rt.chatTemplate);
    if (!template) compiled.set(rt.chatTemplate, (template = new Template(rt.chatTemplate)));
    const token = (key: string) => {
      const v = rt.tokenizerConfig[key];
      return typeof v === 'string' ? v : ((v as { content?: string } | null)?.content ?? '');
    };
    try {
      const text = template.render({
        messages, add_generation_prompt: true,
        bos_token: token('bos_token'), eos_token: token('eos_token'), unk_token: token('unk_token'), pad_token: token('pad_token'),
      });
      return { text, addBos: false, stop: [] };
    } catch (err) {
      throw new RequestError(`the model's chat template refused the conversation: ${(err as Error).message}`, 'messages');
    }
  }
  const users = messages.filter((m) => m.role === 'user');
  if (users.length !== 1 || messages.some((m) => m.role === 'assistant')) {
    throw new RequestError(
      'this model has no chat template, so a conversation is one user message (its text is the instruction of the prompt template)',
      'messages',
    );
  }
  return { text: rt.prompter.generatePrompt(users[0]!.content), addBos: true, stop: [rt.prompter.template.response_split] };
}
