// torch.optim.AdamW over float32 master parameters, and torch's clip_grad_norm_ (global L2 norm).
// Moments live in the backend's 'optim' arena; the update itself is the backend's adamw op.

import type { Backend } from '../engine/backend.ts';
import type { Tensor } from '../engine/tensor.ts';

export interface TrainableParam {
  name: string;
  param: Tensor;
  grad: Tensor;
  /** This tensor's learning rate is lrScale × the scheduled rate (a parameter group; default 1). */
  lrScale?: number;
  /** false: no weight decay on this tensor (a parameter group; default: decayed). */
  weightDecay?: boolean;
}

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const TORCH_ADAMW_DEFAULTS: AdamWOptions = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

export class AdamW {
  readonly moments: { m: Tensor; v: Tensor }[];
  step = 0;

  constructor(private readonly be: Backend, readonly params: readonly TrainableParam[], readonly options: AdamWOptions) {
    this.moments = params.map(({ param }) => {
      const m = be.alloc(param.shape, 'f32', 'optim');
      const v = be.alloc(param.shape, 'f32', 'optim');
      be.fill(m, 0);
      be.fill(v, 0);
      return { m, v };
    });
  }

  /** One update at learning rate lr (the step counter advances first, as torch's does). */
  update(lr: number): void {
    this.step++;
    const o = this.options;
    this.params.forEach(({ param, grad, lrScale = 1, weightDecay = true }, i) => {
      const { m, v } = this.moments[i]!;
      this.be.adamw(param, grad, m, v, lr * lrScale, o.beta1, o.beta2, o.eps, weightDecay ? o.weightDecay : 0, this.step);
    });
  }
}

/**
 * torch.nn.utils.clip_grad_norm_: returns the total L2 norm before clipping and scales every gradient by
 * min(1, maxNorm / (norm + 1e-6)). maxNorm <= 0 only measures.
 */
export async function clipGradNorm(be: Backend, params: readonly TrainableParam[], maxNorm: number, scratch: Tensor): Promise<number> {
  be.fill(scratch, 0);
  for (const { grad } of params) be.sumSquares(scratch, grad);
  const norm = Math.sqrt((await be.download(scratch))[0]!);
  if (maxNorm > 0) {
    const coef = Math.min(1, maxNorm / (norm + 1e-6));
    if (coef < 1) for (const { grad } of params) be.scale(grad, coef);
  }
  return norm;
}
