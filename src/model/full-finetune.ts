// Full (or partial: freeze) fine-tuning: the chosen base weights become float32 masters with gradients, and the
// list of (name, param, grad) the optimizer steps; the others stay frozen as stored. LoRA training never calls this.

import { PROJECTION_INFO, PROJECTIONS } from '../arch/projections.ts';
import type { Backend } from '../engine/backend.ts';
import { isQuantDType } from '../engine/dtype.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { TrainableParam } from '../train/optimizer.ts';
import { UserError } from '../errors.ts';
import type { Model } from './llama.ts';

/** Replaces t by a float32 copy (when stored in 16 bits) and allocates its zeroed gradient. */
export function makeTrainable(be: Backend, t: Tensor): { param: Tensor; grad: Tensor } {
  let param = t;
  if (t.dtype !== 'f32') {
    param = be.alloc(t.shape, 'f32', 'weights');
    be.copy(param, t);
    be.free(t);
  }
  const grad = be.alloc(t.shape, 'f32', 'grads');
  be.fill(grad, 0);
  return { param, grad };
}

/**
 * Makes the weights `trains` selects by HF name (default: every one) trainable; returns them in HF name order.
 * A tied head trains with the embedding.
 */
export function enableFullFinetune(m: Model, trains: (name: string) => boolean = () => true): TrainableParam[] {
  const { be, weights: w } = m;
  const quantized = w.layers.flatMap((l) => Object.values(l.proj)).find((p) => isQuantDType(p.weight.dtype));
  if (quantized) {
    throw new UserError(`full fine-tuning trains every base weight, but this base has ${quantized.weight.dtype} linears (bitsandbytes-quantized, frozen): ` +
      'load it without --load_in_4bit/--load_in_8bit (a 16/32-bit checkpoint), or train a LoRA adapter on the quantized base');
  }
  const out: TrainableParam[] = [];
  const add = (name: string, t: Tensor): { param: Tensor; grad: Tensor | null } => {
    if (!trains(name)) return { param: t, grad: null };
    const tp = makeTrainable(be, t);
    out.push({ name, ...tp });
    return tp;
  };
  const embed = add('model.embed_tokens.weight', w.embed);
  const tied = w.lmHead === w.embed;
  w.embed = embed.param;
  w.dEmbed = embed.grad;
  w.layers.forEach((layer, l) => {
    const prefix = `model.layers.${l}`;
    for (const p of PROJECTIONS) {
      const lin = layer.proj[p];
      const base = `${prefix}.${PROJECTION_INFO[p].block}.${p}`;
      const weight = add(`${base}.weight`, lin.weight);
      lin.weight = weight.param;
      lin.dWeight = weight.grad;
      if (lin.bias) {
        const bias = add(`${base}.bias`, lin.bias);
        lin.bias = bias.param;
        lin.dBias = bias.grad;
      }
    }
    const inNorm = add(`${prefix}.input_layernorm.weight`, layer.inputNorm);
    layer.inputNorm = inNorm.param;
    layer.dInputNorm = inNorm.grad;
    const postNorm = add(`${prefix}.post_attention_layernorm.weight`, layer.postNorm);
    layer.postNorm = postNorm.param;
    layer.dPostNorm = postNorm.grad;
  });
  const norm = add('model.norm.weight', w.norm);
  w.norm = norm.param;
  w.dNorm = norm.grad;
  if (tied) {
    w.lmHead = w.embed;
    w.dLmHead = w.dEmbed;
  } else {
    const head = add('lm_head.weight', w.lmHead);
    w.lmHead = head.param;
    w.dLmHead = head.grad;
  }
  return out;
}
