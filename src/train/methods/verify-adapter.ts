// The check after every adapter save (alpaca-lora once wrote empty 443-byte adapters without noticing):
// re-read the folder, require every tensor with its shape and value, non-zero B once trained, and the same
// logits on a probe batch from the file's own config and weights as from the adapter in memory.

import type { HostTensor } from '../../formats/host-tensor.ts';
import { checkAdapterFitsBase, readPeftAdapter } from '../../formats/peft-adapter.ts';
import type { TokenBatch } from '../../model/batch.ts';
import { batchLogits } from '../../model/compute.ts';
import type { Model } from '../../model/llama.ts';
import { adapterFromTensors, adapterToTensors, settingsFromConfig } from '../../model/lora-io.ts';
import type { LoraAdapter } from '../../model/lora.ts';

export class AdapterVerificationError extends Error {
  override name = 'AdapterVerificationError';
}

function sameValues(a: HostTensor, b: HostTensor): boolean {
  const x = a.data as Float32Array, y = b.data as Float32Array;
  if (a.dtype !== 'F32' || b.dtype !== 'F32' || x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
  return true;
}

/**
 * Throws AdapterVerificationError unless the adapter saved in `dir` is the one in memory. `trained`: at
 * least one optimizer update with a non-zero learning rate has run, so some B must be non-zero.
 */
export async function verifySavedAdapter(model: Model, adapter: LoraAdapter, dir: string, probe: TokenBatch, trained: boolean): Promise<void> {
  const fail = (what: string): never => {
    throw new AdapterVerificationError(`the adapter saved in ${dir} is wrong: ${what}. The save was not kept; the previous files are intact`);
  };
  const { be, config } = model;
  let peft;
  try {
    peft = readPeftAdapter(dir);
    checkAdapterFitsBase(peft, config, dir);
  } catch (err) {
    return fail((err as Error).message);
  }
  const memory = await adapterToTensors(be, adapter);
  for (const [key, t] of memory) {
    const saved = peft.tensors.get(key);
    if (!saved) fail(`${key} is missing`);
    if (saved!.shape.join() !== t.shape.join()) fail(`${key} has shape [${saved!.shape}] instead of [${t.shape}]`);
    if (!sameValues(saved!, t)) fail(`${key} does not hold the trained values`);
  }
  if (peft.tensors.size !== memory.size) fail(`it holds ${peft.tensors.size} tensors instead of ${memory.size}`);
  if (trained && ![...memory].some(([key, t]) => key.includes('lora_B') && (t.data as Float32Array).some((v) => v !== 0))) {
    fail('every lora_B matrix is zero after training, so the adapter would change nothing');
  }
  const reloaded = adapterFromTensors(be, config, { ...settingsFromConfig(peft.config, config.numLayers), dropout: 0 }, peft.tensors, dir);
  try {
    const expected = await batchLogits(model, probe, { adapter, dropout: 0, seed: 0 });
    const actual = await batchLogits(model, probe, { adapter: reloaded, dropout: 0, seed: 0 });
    let worst = 0;
    for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(expected[i]! - actual[i]!));
    if (!(worst <= 1e-6)) fail(`reloaded, it gives logits up to ${worst} away from the adapter in memory on a probe batch`);
  } finally {
    for (const layer of reloaded.layers) for (const pair of layer.values()) for (const t of [pair.A, pair.B, pair.dA, pair.dB]) be.free(t);
  }
}
