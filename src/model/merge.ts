// Merging a LoRA adapter into the base weights (W += scaling * B A) and taking it back out, in float32 on
// the host, one weight at a time; the result is stored back in the weight's own dtype.

import type { Backend } from '../engine/backend.ts';
import type { Model } from './llama.ts';
import { loraDelta, type LoraAdapter } from './lora.ts';

async function applyDelta(be: Backend, m: Model, adapter: LoraAdapter, sign: 1 | -1): Promise<void> {
  for (let l = 0; l < adapter.layers.length; l++) {
    for (const [p, pair] of adapter.layers[l]!) {
      const weight = m.weights.layers[l]!.proj[p].weight;
      const A = (await be.download(pair.A)) as Float32Array;
      const B = (await be.download(pair.B)) as Float32Array;
      const delta = loraDelta(A, B, adapter.settings.r, pair.inFeatures, pair.outFeatures, adapter.scaling);
      const w = (await be.download(weight)) as Float32Array;
      for (let i = 0; i < w.length; i++) w[i]! += sign * delta[i]!;
      be.upload(weight, w);
    }
  }
}

/** W += scaling * B A for every adapted projection. */
export function mergeLora(m: Model, adapter: LoraAdapter): Promise<void> {
  return applyDelta(m.be, m, adapter, 1);
}

/** W -= scaling * B A (exact only for float32 weights; half weights round twice). */
export function unmergeLora(m: Model, adapter: LoraAdapter): Promise<void> {
  return applyDelta(m.be, m, adapter, -1);
}
