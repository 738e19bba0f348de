// Turns data set records into training examples exactly as alpaca-lora's finetune.py does
// (tokenize + generate_and_tokenize_prompt), including its EOS quirk. Not batching (see collate.ts).

import { UserError } from '../errors.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import type { DataRecord } from './dataset.ts';
import type { Prompter } from './prompter.ts';

/** Label of a position that is not trained (PyTorch's ignore_index). */
export const IGNORE_INDEX = -100;

export interface TokenizedExample {
  input_ids: number[];
  labels: number[]; // IGNORE_INDEX where not trained
  attention_mask: number[];
}

export interface PromptTokenizerOptions {
  cutoffLen: number;
  /** Train on the prompt too (the seed's default), or only on the response. */
  trainOnInputs: boolean;
  /** The seed's --add_eos_token: only changes how the masked prompt length is counted (see below). */
  addEosToken: boolean;
}

/**
 * The seed's generate_and_tokenize_prompt for one record. Its quirk, kept on purpose: the full prompt
 * always gets EOS when it fits (tokenize() defaults add_eos_token=True); the flag only decides whether
 * the user prompt is measured with an EOS that is then subtracted again.
 */
export function makePromptTokenizer(tokenizer: Tokenizer, prompter: Prompter, options: PromptTokenizerOptions): (record: DataRecord) => TokenizedExample {
  const { cutoffLen, trainOnInputs, addEosToken } = options;
  if (!Number.isInteger(cutoffLen) || cutoffLen < 2) throw new UserError(`--cutoff_len must be an integer of at least 2, got ${cutoffLen}`);
  const bos = tokenizer.addBosToken && tokenizer.bosId !== null ? [tokenizer.bosId] : [];
  const eos = tokenizer.addEosToken ? [tokenizer.eosId] : [];

  // The seed's tokenize(): the tokenizer's own special tokens, truncation to cutoff_len, then maybe EOS.
  const tokenize = (text: string, appendEos: boolean): number[] => {
    const body = encodeHead(tokenizer, text, cutoffLen);
    body.length = Math.min(body.length, cutoffLen - bos.length - eos.length);
    const ids = bos.concat(body, eos);
    if (ids.at(-1) !== tokenizer.eosId && ids.length < cutoffLen && appendEos) ids.push(tokenizer.eosId);
    return ids;
  };

  return (record) => {
    let inputIds: number[];
    let labels: number[];
    switch (record.kind) {
      case 'instruction': {
        inputIds = tokenize(prompter.generatePrompt(record.instruction, record.input, record.output), true);
        labels = inputIds.slice();
        if (!trainOnInputs) {
          const user = tokenize(prompter.generatePrompt(record.instruction, record.input), addEosToken);
          // The seed would emit labels longer than input_ids if the prompt alone tokenized longer; cap it.
          const masked = Math.min(user.length - (addEosToken ? 1 : 0), inputIds.length);
          labels.fill(IGNORE_INDEX, 0, masked);
        }
        break;
      }
      case 'text':
        inputIds = tokenize(record.text, true);
        labels = inputIds.slice();
        break;
      case 'conversation':
        throw new Error('a conversation is tokenized through a chat template (chat-tokenize.ts), not a prompt template');
      case 'tokenized':
        for (const id of record.input_ids) {
          if (id >= tokenizer.vocabSize) throw new UserError(`pre-tokenized row holds token id ${id}, outside the vocabulary of ${tokenizer.source} (${tokenizer.vocabSize})`);
        }
        inputIds = record.input_ids.slice(0, cutoffLen);
        labels = record.labels.slice(0, cutoffLen);
        break;
    }
    return { input_ids: inputIds, labels, attention_mask: new Array<number>(inputIds.length).fill(1) };
  };
}

/** Characters per token the first prefix tries; a prefix that yields too few tokens is doubled. */
const CHARS_PER_TOKEN = 16;

/** Where no token spans: before a space that follows a non-space, or a newline that follows a letter or digit. */
const BOUNDARY = /(?<=\S) |(?<=[\p{L}\p{N}])\n/gu;

/**
 * At least the first `count` tokens of `text` (all of them when it has fewer), without tokenizing a long
 * text whole. The prefix ends at a BOUNDARY, which neither SentencePiece pieces nor byte-level pre-tokens
 * cross, so its tokens are the whole text's first ones; when it holds at least `count`, those are the
 * answer. A text with no boundary past the budget is tokenized whole.
 */
export function encodeHead(tokenizer: Tokenizer, text: string, count: number): number[] {
  for (let budget = count * CHARS_PER_TOKEN; budget < text.length; budget *= 2) {
    BOUNDARY.lastIndex = budget;
    const cut = BOUNDARY.exec(text)?.index;
    if (cut === undefined) break;
    const ids = tokenizer.encode(text.slice(0, cut), { addBos: false, addEos: false });
    if (ids.length >= count) return ids;
  }
  return tokenizer.encode(text, { addBos: false, addEos: false });
}

/** Tokens the loss is computed on: labels not masked, except the first (nothing predicts it). */
export function trainedTokenCount(example: Pick<TokenizedExample, 'labels'>): number {
  let n = 0;
  for (let t = 1; t < example.labels.length; t++) if (example.labels[t] !== IGNORE_INDEX) n++;
  return n;
}

/**
 * The examples, unless nothing at all would be trained (a silent zero-loss run otherwise): then an error naming
 * the data set and what to change.
 */
export function requireTrainedTokens<T extends Pick<TokenizedExample, 'labels'>>(examples: T[], source: string): T[] {
  if (!examples.some((e) => trainedTokenCount(e) > 0)) {
    throw new UserError(
      `${source}: every example is masked out (no response token fits within cutoff_len), so training would learn nothing: ` +
        'raise --cutoff_len or pass --train_on_inputs',
    );
  }
  return examples;
}
