// LoRA+ (arXiv 2402.12354) as PEFT's create_loraplus_optimizer groups the parameters: lora_B matrices and every
// 1-D tensor learn at ratio × the learning rate, the rest (lora_A, full-size copies) at the rate itself; a 1-D tensor
// transformers would not decay (a bias, a norm's weight) gets no weight decay. PEFT's loraplus_weight_decay is our
// --weight_decay. Not PEFT's separate embedding-LoRA rate (no LoRA on embeddings here).

import type { TrainableParam } from '../optimizer.ts';

export function loraPlusGroups(params: readonly TrainableParam[], ratio: number): TrainableParam[] {
  return params.map((p) => {
    const oneD = p.param.shape.length === 1;
    if (!p.name.includes('lora_B') && !oneD) return p;
    const decayed = !(oneD && (p.name.endsWith('.bias') || /norm/.test(p.name)));
    return { ...p, lrScale: ratio, weightDecay: decayed };
  });
}
