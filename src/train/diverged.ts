// The error that stops a run whose loss or gradient norm stopped being a finite number.
// The adapter is left as it was before the failing step; nothing is saved from it.

import { UserError } from '../errors.ts';

export class TrainingDiverged extends UserError {
  constructor(readonly step: number, loss: number, gradNorm: number) {
    super(
      `step ${step}: the loss is ${loss} (gradient norm ${gradNorm}), so training diverged and stopped; ` +
        'the last checkpoint is intact. Try a lower --learning_rate, more --warmup_steps or a smaller --max_grad_norm, ' +
        'and check the data for empty or garbled records',
    );
  }
}
