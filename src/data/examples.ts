// Records to training examples for a run: conversations (and Alpaca records with a system prompt or history, or all
// Alpaca records when --chat_template is given) through the chat template (chat-tokenize.ts); plain Alpaca, text and
// pre-tokenized records the seed's way (tokenize.ts). Records a template refuses are errors naming them, or are
// counted and left out with --skip_bad_records. Not loading (dataset.ts) or the split.

import { UserError } from '../errors.ts';
import { readTokenizerSettings } from '../tokenizer/tokenizer-config.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { ChatTemplateRenderer, templateTokens, type TemplateTokens } from './chat-renderer.ts';
import { chooseChatTemplate, type ChatTemplateChoice } from './chat-template-source.ts';
import { tokenizeConversation, type ChatExample } from './chat-tokenize.ts';
import { alpacaMessages, BadRecord, type ChatMessage } from './conversation.ts';
import type { DataRecord } from './dataset.ts';
import { renderedTextEncoder } from './encode-rendered.ts';
import { Prompter } from './prompter.ts';
import { makePromptTokenizer, type TokenizedExample } from './tokenize.ts';

export interface ExampleSettings {
  cutoffLen: number;
  /** null: the seed's default (true) for plain Alpaca records, false (answers only) for chat data. */
  trainOnInputs: boolean | null;
  addEosToken: boolean;
  promptTemplateName: string;
  /** --chat_template: tokenizer, llama2, llama3, chatml, alpaca or a file; unset: chat data uses the tokenizer's, else alpaca. */
  chatTemplate?: string;
  /** The tokenizer's folder (its chat template and special tokens' text); null: none. */
  tokenizerDir: string | null;
  skipBadRecords?: boolean;
}

/** An example and its length before cutoff_len (equal when it was not cut). */
export type Example = TokenizedExample & { fullLength?: number };

export interface ExampleBuilder {
  /** The chat template in use, or null when every record goes the seed's way. */
  chatTemplate: ChatTemplateChoice | null;
  trainOnInputs: boolean;
  /** Examples in record order; records refused (with skipBadRecords) are left out and described in `bad`. */
  build(records: readonly DataRecord[]): Promise<{ examples: Example[]; bad: string[] }>;
  close(): Promise<unknown>;
}

/** True when the records need a chat template: conversations, or Alpaca records with a system prompt or history. */
export function needsChatTemplate(records: readonly DataRecord[]): boolean {
  return records.some((r) => r.kind === 'conversation' || (r.kind === 'instruction' && (!!r.system || !!r.history?.length)));
}

/** The special tokens' text: tokenizer_config.json's, else the tokenizer's own pieces. */
function tokensOf(tokenizer: Tokenizer, config: Record<string, unknown>): TemplateTokens {
  const t = templateTokens(config);
  const piece = (id: number | null) => (id === null ? '' : tokenizer.idToPiece(id));
  return {
    bos_token: t.bos_token || piece(tokenizer.bosId), eos_token: t.eos_token || piece(tokenizer.eosId),
    unk_token: t.unk_token || piece(tokenizer.unkId), pad_token: t.pad_token || piece(tokenizer.padId),
  };
}

/** `records` decide whether a chat template is needed (pass every record of the run, training and validation). */
export function makeExampleBuilder(tokenizer: Tokenizer, s: ExampleSettings, records: readonly DataRecord[]): ExampleBuilder {
  const config = s.tokenizerDir ? readTokenizerSettings(s.tokenizerDir).rawConfig : {};
  const chat = s.chatTemplate || needsChatTemplate(records) ? chooseChatTemplate(s.chatTemplate, s.tokenizerDir ?? '', config) : null;
  const trainOnInputs = s.trainOnInputs ?? chat === null;
  const prompter = Prompter.load(s.promptTemplateName);
  const seedWay = makePromptTokenizer(tokenizer, prompter, { cutoffLen: s.cutoffLen, trainOnInputs, addEosToken: s.addEosToken });
  let renderer: ChatTemplateRenderer | null = null;
  if (chat) {
    try {
      renderer = new ChatTemplateRenderer(chat.source);
    } catch (err) {
      throw new UserError(`--chat_template ${chat.name} does not parse as Jinja: ${(err as Error).message}`);
    }
  }
  const tokens = tokensOf(tokenizer, config);
  const encode = renderedTextEncoder(tokenizer);
  const bos = tokenizer.bosId !== null ? 1 : 0;
  // the seed's example is cut at cutoff_len; its uncut length (for the cutoff warning) needs the whole text tokenized
  const withFullLength = (e: TokenizedExample, r: DataRecord): Example => {
    if (e.input_ids.length < s.cutoffLen) return e;
    const text = r.kind === 'instruction' ? prompter.generatePrompt(r.instruction, r.input, r.output) : r.kind === 'text' ? r.text : null;
    const fullLength = r.kind === 'tokenized' ? r.input_ids.length : bos + tokenizer.encode(text ?? '', { addBos: false, addEos: false }).length + 1;
    return { ...e, fullLength };
  };
  const messagesOf = (r: DataRecord): ChatMessage[] | null =>
    renderer === null ? null : r.kind === 'conversation' ? r.messages : r.kind === 'instruction' ? alpacaMessages(r) : null;

  return {
    chatTemplate: chat,
    trainOnInputs,
    async build(records) {
      const examples: Example[] = [];
      const bad: string[] = [];
      for (const r of records) {
        try {
          const messages = messagesOf(r);
          const example: ChatExample | TokenizedExample = messages
            ? await tokenizeConversation(renderer!, tokens, encode, messages, { cutoffLen: s.cutoffLen, trainOnInputs })
            : withFullLength(seedWay(r), r);
          examples.push(example);
        } catch (err) {
          if (!(err instanceof BadRecord)) throw err;
          const reason = `${('where' in r && r.where) || 'a record'}: ${err.message}`;
          if (!s.skipBadRecords) throw new UserError(`${reason}; fix the record, or pass --skip_bad_records to leave such records out`);
          bad.push(reason);
        }
      }
      return { examples, bad };
    },
    close: () => renderer?.close() ?? Promise.resolve(),
  };
}
