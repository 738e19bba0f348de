// The example model with its head untied (lm_head a copy of the embedding): modules_to_save needs an lm_head of its
// own, and the example model ties it to its embedding.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeExampleModel } from '../../src/example/run-example.ts';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { writeSafetensors } from '../../src/formats/safetensors-write.ts';

export async function writeUntiedExampleModel(dir: string): Promise<void> {
  await writeExampleModel(dir, () => {});
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, tie_word_embeddings: false }));
  const stored = readSafetensors(join(dir, 'model.safetensors'));
  stored.set('lm_head.weight', stored.get('model.embed_tokens.weight')!);
  await writeSafetensors(join(dir, 'model.safetensors'), stored);
}
