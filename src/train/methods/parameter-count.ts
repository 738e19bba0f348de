// Counting a model's parameters for the "trainable params: … || all params: …" line: each distinct base tensor
// once (a tied head is the embedding). Not which of them train (the method says).

import type { Model } from '../../model/llama.ts';

export function baseParameterCount(model: Model): number {
  const w = model.weights;
  const tensors = new Set([w.embed, w.norm, w.lmHead, ...w.layers.flatMap((l) => [l.inputNorm, l.postNorm, ...Object.values(l.proj).flatMap((p) => [p.weight, p.bias])])]);
  let n = 0;
  for (const t of tensors) n += t?.size ?? 0;
  return n;
}
