// Inference-only weight layout: a served model's bf16 decoder linears and head are replaced by frozen copies in the
// layout the backend's products read fastest (Backend.packWeight; the cpu backend's tiles on AVX512_BF16 CPUs),
// with the same results up to summation order. Training, exports and merges keep the row layout: only generate
// and serve pack. Not the kernels (native/cpu/src/kernels/matvec-packed.cpp).

import type { Tensor } from '../engine/tensor.ts';
import { PROJECTIONS } from './lora.ts';
import type { Model } from './llama.ts';

/**
 * Packs the model's bf16 decoder linears and LM head in place where the backend has a packed layout, freeing the
 * row-layout originals; a head tied to the embedding gets a packed copy of its own (the embedding lookup reads
 * rows), so it then takes its size in memory a second time. Returns the number of weights packed.
 */
export function packForInference(m: Model): number {
  const { be, weights: w } = m;
  const pack = (t: Tensor) => (t.dtype === 'bf16' ? be.packWeight(t) : null); // quantized, f32 and f16 stay as they are
  let packed = 0;
  for (const layer of w.layers) {
    for (const p of PROJECTIONS) {
      const lin = layer.proj[p];
      const copy = pack(lin.weight);
      if (!copy) continue;
      be.free(lin.weight);
      lin.weight = copy;
      packed++;
    }
  }
  const head = pack(w.lmHead);
  if (head) {
    if (w.lmHead !== w.embed) be.free(w.lmHead);
    w.lmHead = head;
    packed++;
  }
  return packed;
}
