// Conversations to training examples through a chat template, so training sees exactly the text `serve` renders.
//
// The rule: the full conversation is rendered once and tokenized once. Each assistant turn's span is found by
// rendering prefixes: it starts where the rendering of the messages before it, with add_generation_prompt, ends,
// and ends where the rendering of the messages up to and including it ends. So the span is the turn's content
// plus whatever the template writes after it (its end-of-turn token(s), e.g. `</s>`, `<|eot_id|>`, `<|im_end|>\n`).
// Both prefixes must be prefixes of the full text, else the template is refused for training. Character spans
// become token spans by tokenizing the text up to each boundary: the tokens it shares with the full tokenization
// lie before the boundary; a token that straddles it holds some of the turn, and trains.
// Labels: only assistant spans train (train_on_inputs false, the default for chat data); train_on_inputs true
// trains every token. cutoff_len drops whole trailing turns: the example ends after the last assistant span that
// fits. When even the first answer does not fit, the example is cut at cutoff_len, mid-answer; when its prompt
// alone fills cutoff_len, nothing of it trains (counted by inspect-data, refused when no example trains).

import { chatContext, ChatTemplateRenderer, TemplateError, TemplateLimitError, type TemplateTokens } from './chat-renderer.ts';
import { BadRecord, type ChatMessage } from './conversation.ts';
import type { TextEncoder } from './encode-rendered.ts';
import { IGNORE_INDEX, type TokenizedExample } from './tokenize.ts';

export interface ChatTokenizeOptions {
  cutoffLen: number;
  trainOnInputs: boolean;
}

/** An example with what the cut did: its length before cutoff_len, and how many trailing answers it dropped. */
export interface ChatExample extends TokenizedExample {
  fullLength: number;
  droppedTurns: number;
  /** The rendered text, and each trained answer's [start, end) in it (characters), for inspect-data. */
  text: string;
  spans: [number, number][];
}

/** The character span of each assistant turn in the full rendering of `messages`. */
export async function assistantSpans(
  renderer: ChatTemplateRenderer, tokens: TemplateTokens, messages: readonly ChatMessage[],
): Promise<{ text: string; spans: [number, number][] }> {
  const turns = messages.flatMap((m, i) => (m.role === 'assistant' ? [i] : []));
  const contexts = [chatContext(messages, tokens, false)];
  for (const i of turns) contexts.push(chatContext(messages.slice(0, i), tokens, true), chatContext(messages.slice(0, i + 1), tokens, false));
  let texts: string[];
  try {
    texts = await renderer.renderMany(contexts);
  } catch (err) {
    if (err instanceof TemplateError) throw new BadRecord(`the chat template refused it: ${err.message}`);
    if (err instanceof TemplateLimitError) throw new BadRecord(`the chat template did not finish on it: ${err.message}`);
    throw err;
  }
  const text = texts[0]!;
  const spans = turns.map((turn, k): [number, number] => {
    const before = texts[1 + 2 * k]!;
    const through = texts[2 + 2 * k]!;
    if (!text.startsWith(before) || !text.startsWith(through) || through.length < before.length) {
      throw new BadRecord(
        `the chat template does not render it incrementally (the text up to assistant turn ${turn} is not the start of the whole conversation's), ` +
          'so the answers to train cannot be located: use a template that renders earlier turns unchanged (e.g. --chat_template chatml)',
      );
    }
    return [before.length, through.length];
  });
  return { text, spans };
}

/** Length of the common start of two id lists. */
function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/** Renders, tokenizes, masks and cuts one conversation (the rule at the top of this file). */
export async function tokenizeConversation(
  renderer: ChatTemplateRenderer, tokens: TemplateTokens, encode: TextEncoder, messages: readonly ChatMessage[], o: ChatTokenizeOptions,
): Promise<ChatExample> {
  const { text, spans } = await assistantSpans(renderer, tokens, messages);
  const ids = encode(text);
  // token [start, end) of each span: tokens shared with the prefix's tokenization lie before a boundary
  const tokenSpans = spans.map(([s, e]): [number, number] => {
    const head = encode(text.slice(0, e));
    const shared = commonPrefix(head, ids);
    return [commonPrefix(encode(text.slice(0, s)), ids), shared + (head.length > shared ? 1 : 0)];
  });
  let keep = ids.length;
  let kept = tokenSpans.length;
  if (ids.length > o.cutoffLen) {
    kept = tokenSpans.filter(([, end]) => end <= o.cutoffLen).length;
    keep = kept > 0 ? tokenSpans[kept - 1]![1] : o.cutoffLen;
    kept = Math.max(kept, 1);
  }
  const inputIds = ids.slice(0, keep);
  const labels = o.trainOnInputs ? inputIds.slice() : new Array<number>(keep).fill(IGNORE_INDEX);
  if (!o.trainOnInputs) {
    for (const [start, end] of tokenSpans.slice(0, kept)) for (let t = start; t < Math.min(end, keep); t++) labels[t] = inputIds[t]!;
  }
  return {
    input_ids: inputIds, labels, attention_mask: new Array<number>(keep).fill(1),
    fullLength: ids.length, droppedTurns: tokenSpans.length - kept, text, spans: spans.slice(0, kept),
  };
}
