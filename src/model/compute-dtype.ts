// --compute_dtype: what a bf16 base weight's products compute in. f32 (the default) widens the weights and multiplies
// in float32; bf16 multiplies in bf16 with float32 sums (PyTorch CPU autocast), on the cpu backend where the CPU has
// AVX512_BF16 (AMX CPUs have it), and on js (the reference). Not the weight storage (--dtype) nor the activations'.

import type { Backend, ComputeDType } from '../engine/backend.ts';
import { UserError } from '../errors.ts';

export const COMPUTE_DTYPES: readonly ComputeDType[] = ['f32', 'bf16'];

/** Sets the backend's compute dtype; a backend or CPU that cannot is a UserError saying what to do. */
export function applyComputeDtype(be: Backend, dtype: ComputeDType): void {
  if (dtype === 'f32') return be.setComputeDtype?.('f32');
  if (!be.setComputeDtype) {
    throw new UserError(`--compute_dtype bf16 is for --backend cpu (the ${be.name} backend computes bf16 weights one way only): drop the flag or pass --backend cpu`);
  }
  try {
    be.setComputeDtype('bf16');
  } catch (err) {
    const why = err instanceof Error ? err.message.replace(/^cpu backend: setComputeDtype: /, '') : String(err);
    throw new UserError(`--compute_dtype bf16: ${why}: leave --compute_dtype at f32 on this machine`);
  }
}
