// Merging a LoRA adapter into the base weights (W += scaling * B A; with DoRA W = m / ||W + s B A|| * (W + s B A)
// per output row) and taking a plain LoRA back out, in float32 on the host, one weight at a time; the result is
// stored back in the weight's own dtype.

import { UserError } from '../errors.ts';
import { mergeDoraRows } from './dora.ts';
import type { Model } from './llama.ts';
import { loraDelta, type LoraAdapter } from './lora.ts';

async function applyDelta(m: Model, adapter: LoraAdapter, sign: 1 | -1): Promise<void> {
  const be = m.be;
  for (let l = 0; l < adapter.layers.length; l++) {
    for (const [p, pair] of adapter.layers[l]!) {
      const weight = m.weights.layers[l]!.proj[p].weight;
      const A = (await be.download(pair.A)) as Float32Array;
      const B = (await be.download(pair.B)) as Float32Array;
      const delta = loraDelta(A, B, adapter.settings.r, pair.inFeatures, pair.outFeatures, adapter.scaling);
      const w = (await be.download(weight)) as Float32Array;
      if (pair.dora) {
        mergeDoraRows(w, delta, (await be.download(pair.dora.magnitude)) as Float32Array, pair.outFeatures, pair.inFeatures);
        pair.dora.baseNormSq = null; // the base changed
      } else {
        for (let i = 0; i < w.length; i++) w[i]! += sign * delta[i]!;
      }
      be.upload(weight, w);
    }
  }
}

/** Merges every adapted projection into its base weight. */
export function mergeLora(m: Model, adapter: LoraAdapter): Promise<void> {
  return applyDelta(m, adapter, 1);
}

/** W -= scaling * B A (exact only for float32 weights; half weights round twice). A DoRA merge cannot be undone. */
export function unmergeLora(m: Model, adapter: LoraAdapter): Promise<void> {
  if (adapter.settings.useDora) throw new UserError('a merged DoRA adapter cannot be taken back out of the weights (its row norms are gone): reload the base model instead');
  return applyDelta(m, adapter, -1);
}
