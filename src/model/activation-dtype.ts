// --activation_dtype: which dtype a model's activations are stored in (compute stays float32 in the kernels;
// backend.ts lists the ops' 16-bit arguments). Resolves 'auto' against the backend and the base weights.
// Not the allocation (activations.ts plans the buffers, compute.ts keeps them).

import type { Backend } from '../engine/backend.ts';
import type { TensorDType } from '../engine/dtype.ts';
import { UserError } from '../errors.ts';
import type { Model } from './llama.ts';

export const ACTIVATION_DTYPES = ['auto', 'f32', 'bf16', 'f16'] as const;
export type ActivationDTypeChoice = (typeof ACTIVATION_DTYPES)[number];
export type ActivationDType = Exclude<ActivationDTypeChoice, 'auto'>;

/** Backends whose kernels take 16-bit activations (cuda's keep them float32). */
const HALF_ACTIVATIONS: ReadonlySet<Backend['name']> = new Set(['js', 'cpu']);

/**
 * auto: bf16 on a bf16 base (its decoder linears stored bf16, packed or not, not quantized) on the cpu backend, else f32 (js is
 * the reference, cuda keeps f32). An explicit 16-bit choice on a backend that cannot keep it is an error.
 */
export function resolveActivationDtype(choice: ActivationDTypeChoice, m: Model): ActivationDType {
  return activationDtypeFor(choice, m.be.name, m.weights.layers[0]?.proj.q_proj.weight.dtype ?? 'f32');
}

/** resolveActivationDtype without a model: the backend's name and the dtype its decoder linears are held in (the planner's). */
export function activationDtypeFor(choice: ActivationDTypeChoice, backend: Backend['name'], linearDtype: TensorDType): ActivationDType {
  if (choice === 'auto') return backend === 'cpu' && (linearDtype === 'bf16' || linearDtype === 'bf16-packed') ? 'bf16' : 'f32';
  if (choice !== 'f32' && !HALF_ACTIVATIONS.has(backend)) {
    throw new UserError(`--activation_dtype ${choice}: the ${backend} backend keeps activations in float32; pass --activation_dtype f32 (or auto), or use --backend cpu`);
  }
  return choice;
}
