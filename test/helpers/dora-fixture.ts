// The DoRA fixture's adapter as its golden values were computed (../shared/fixtures/dora/README.md): its
// adapter_model.safetensors was saved with every lora_B zero, while init_magnitude, the logits and the merged
// weights were computed with the A and B of ../models/llama-mha/adapter (init_magnitude matches so to 3e-8).
// So: its config, A and magnitudes as saved, with that adapter's lora_B.

import { readPeftAdapter, writePeftAdapter, type PeftAdapter } from '../../src/formats/peft-adapter.ts';
import { sharedPath } from './shared.ts';

export const DORA_DIR = sharedPath('fixtures', 'dora', 'llama-mha');
export const DORA_BASE = sharedPath('fixtures', 'models', 'llama-mha');

export function doraFixtureAdapter(): PeftAdapter {
  const peft = readPeftAdapter(`${DORA_DIR}/adapter`);
  for (const [key, tensor] of readPeftAdapter(`${DORA_BASE}/adapter`).tensors) if (key.includes('.lora_B.')) peft.tensors.set(key, tensor);
  return peft;
}

/** The adapter above written as a PEFT folder at `dir`. */
export async function writeDoraFixtureAdapter(dir: string): Promise<string> {
  const peft = doraFixtureAdapter();
  await writePeftAdapter(dir, peft.config, peft.tensors);
  return dir;
}
