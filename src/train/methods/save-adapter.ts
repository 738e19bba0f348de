// Saving the final adapter into output_dir as PEFT writes it: built in a temporary folder, verified
// (verify-adapter.ts), and only then moved into place, weights first. Checkpoints are checkpoint.ts.

import { randomBytes } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writePeftAdapter, type AdapterConfig } from '../../formats/peft-adapter.ts';
import type { TokenBatch } from '../../model/batch.ts';
import type { Model } from '../../model/llama.ts';
import { adapterToTensors } from '../../model/lora-io.ts';
import type { LoraAdapter } from '../../model/lora.ts';
import { verifySavedAdapter } from './verify-adapter.ts';

export async function saveVerifiedAdapter(
  model: Model, adapter: LoraAdapter, config: AdapterConfig, dir: string, probe: TokenBatch, trained: boolean,
): Promise<void> {
  const tmp = join(dir, `.adapter.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await writePeftAdapter(tmp, config, await adapterToTensors(model.be, adapter));
    await verifySavedAdapter(model, adapter, tmp, probe, trained);
    for (const name of ['adapter_model.safetensors', 'adapter_config.json']) await rename(join(tmp, name), join(dir, name));
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
