// OpenAI chat messages to a prompt: the chat template an adapter was trained with, else the tokenizer's (Jinja,
// rendered within limits by data/chat-renderer.ts, the renderer training uses too); else the prompt template, whose
// instruction is the conversation's one user message (system messages are ignored: alpaca's templates have no place
// for them). Not tokenization or generation.

import { chatTemplateOf, type Runtime } from '../generate/runtime.ts';
import { contentText, type ChatMessage } from '../data/conversation.ts';
import { chatContext, ChatTemplateRenderer, templateTokens, TemplateError, TemplateLimitError } from '../data/chat-renderer.ts';
import { RequestError } from './request-error.ts';

export type { ChatMessage };

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
    return { role: role as ChatMessage['role'], content: messageText(content, `${where}.content`) };
  });
}

function messageText(content: unknown, where: string): string {
  const text = contentText(content);
  if (text === null) throw new RequestError(`${where} must be a string or a list of {"type": "text", "text": …} parts`, where);
  return text;
}

const renderers = new Map<string, ChatTemplateRenderer | Error>();

/** The renderer of a template (parsed once per template), or its parse error. */
function rendererOf(template: string): ChatTemplateRenderer | Error {
  let renderer = renderers.get(template);
  if (!renderer) {
    try {
      renderer = new ChatTemplateRenderer(template);
    } catch (err) {
      renderer = err as Error;
    }
    renderers.set(template, renderer);
  }
  return renderer;
}

/** Parses the default model's chat template; the parse error, for the server to report at start. */
export function prepareChatTemplate(rt: Runtime): Error | null {
  const template = chatTemplateOf(rt);
  const renderer = template === null ? null : rendererOf(template);
  return renderer instanceof Error ? renderer : null;
}

/** The prompt for `messages` sent to model `model` (default: the default model), in that model's chat template. */
export async function chatPrompt(rt: Runtime, messages: ChatMessage[], model?: string): Promise<ChatPrompt> {
  const template = chatTemplateOf(rt, model);
  if (template !== null) {
    const renderer = rendererOf(template);
    if (renderer instanceof Error) throw new RequestError(`the model's chat template does not parse (${renderer.message}): fix its chat_template`, null, 500, 'chat_template_error');
    try {
      const text = await renderer.render(chatContext(messages, templateTokens(rt.tokenizerConfig), true));
      return { text, addBos: false, stop: [] };
    } catch (err) {
      if (err instanceof TemplateError) throw new RequestError(`the model's chat template refused the conversation: ${err.message}`, 'messages');
      if (err instanceof TemplateLimitError) throw new RequestError(`the model's chat template did not finish: ${err.message}; fix its chat_template`, null, 500, 'chat_template_error');
      throw err;
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
