// Builds a small LLaMA-style tokenizer.json from example text: <unk> <s> </s>, the 256 byte-fallback
// tokens, every character of the text, then BPE merges learned within ▁-prefixed words (never across a
// newline, so a prompt tokenizes the same alone as with its response after it), laid out as
// transformers writes LLaMA's tokenizer.json. For the built-in example only; not a general BPE trainer.

import { writeFileAtomic } from '../util/atomic-write.ts';
import { join } from 'node:path';

const SPACE = '\u2581';
const SPECIALS = ['<unk>', '<s>', '</s>'];
/** Merge units: a newline alone (never merged, as LLaMA's byte token), or a word with its leading ▁. */
const UNIT = /\n|\u2581?[^\u2581\n]+|\u2581/g;

export interface BpeVocabulary {
  vocab: Map<string, number>;
  merges: [string, string][];
}

/** Learns merges until the vocabulary reaches `vocabSize` or no pair occurs twice. Deterministic. */
export function learnBpe(texts: readonly string[], vocabSize: number): BpeVocabulary {
  const vocab = new Map<string, number>();
  const add = (piece: string) => {
    if (!vocab.has(piece)) vocab.set(piece, vocab.size);
  };
  SPECIALS.forEach(add);
  for (let b = 0; b < 256; b++) add(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const wordCounts = new Map<string, number>();
  for (const text of texts) {
    for (const word of (SPACE + text.replaceAll(' ', SPACE)).match(UNIT)!) wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1);
  }
  const words = [...wordCounts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([w, n]) => ({ symbols: [...w], n }));
  for (const ch of [...new Set(words.flatMap((w) => w.symbols))].sort()) add(ch);
  const merges: [string, string][] = [];
  while (vocab.size < vocabSize) {
    const pairs = new Map<string, number>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.symbols.length; i++) {
        const key = `${w.symbols[i]}\u0000${w.symbols[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + w.n);
      }
    }
    let best: string | null = null, bestCount = 1;
    for (const [key, count] of pairs) if (count > bestCount || (count === bestCount && best !== null && key < best)) [best, bestCount] = [key, count];
    if (best === null) break;
    const [left, right] = best.split('\u0000') as [string, string];
    merges.push([left, right]);
    add(left + right);
    for (const w of words) {
      const merged: string[] = [];
      for (let i = 0; i < w.symbols.length; i++) {
        if (i + 1 < w.symbols.length && w.symbols[i] === left && w.symbols[i + 1] === right) {
          merged.push(left + right);
          i++;
        } else {
          merged.push(w.symbols[i]!);
        }
      }
      w.symbols = merged;
    }
  }
  return { vocab, merges };
}

/** tokenizer.json (Metaspace, byte-fallback BPE, LLaMA's decoder) for a learned vocabulary. */
export function tokenizerJson(v: BpeVocabulary): object {
  const special = (content: string) => ({ id: v.vocab.get(content)!, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map(special),
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: SPACE, prepend_scheme: 'always', split: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [v.vocab.get('<s>')], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false,
      vocab: Object.fromEntries(v.vocab), merges: v.merges,
    },
  };
}

/** Writes tokenizer.json and tokenizer_config.json (BOS added, EOS not, as LlamaTokenizer) into `dir`. */
export async function writeTokenizer(dir: string, v: BpeVocabulary): Promise<void> {
  await writeFileAtomic(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson(v)));
  await writeFileAtomic(join(dir, 'tokenizer_config.json'), JSON.stringify({
    add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: null,
    clean_up_tokenization_spaces: false, model_max_length: 256, tokenizer_class: 'LlamaTokenizer',
  }, null, 2) + '\n');
}
