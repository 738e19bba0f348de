// Writes tokenized examples as JSON Lines, `{"input_ids": […], "labels": […]}` per line in the given
// order, atomically. loadDataset reads such a file back as pre-tokenized rows.

import { writeChunksAtomic } from '../util/atomic-write.ts';
import type { TokenizedExample } from './tokenize.ts';

const CHUNK_CHARS = 1 << 20;

export async function writeTokenizedJsonl(path: string, examples: readonly Pick<TokenizedExample, 'input_ids' | 'labels'>[]): Promise<void> {
  await writeChunksAtomic(path, chunks(examples));
}

function* chunks(examples: readonly Pick<TokenizedExample, 'input_ids' | 'labels'>[]): Generator<Uint8Array> {
  let text = '';
  for (const e of examples) {
    text += `{"input_ids": [${e.input_ids.join(', ')}], "labels": [${e.labels.join(', ')}]}\n`;
    if (text.length >= CHUNK_CHARS) {
      yield Buffer.from(text, 'utf8');
      text = '';
    }
  }
  if (text.length > 0) yield Buffer.from(text, 'utf8');
}
