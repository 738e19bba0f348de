// The --compute_dtype flag of finetune, generate and serve (model/compute-dtype.ts does the work). Not the weight
// storage flag (--dtype).

import type { ComputeDType } from '../engine/backend.ts';
import { COMPUTE_DTYPES } from '../model/compute-dtype.ts';
import { UsageError, type FlagSpecs, type ParsedFlags } from './args.ts';

export const COMPUTE_DTYPE_FLAG: FlagSpecs = {
  compute_dtype: {
    type: 'string', default: 'f32',
    help: "f32 or bf16: what a bf16 base's products compute in (bf16: bf16 products with float32 sums, about 2x the multiply rate; --backend cpu on a CPU with AVX512_BF16)",
  },
};

export function computeDtypeFrom(command: string, flags: ParsedFlags): ComputeDType {
  const v = flags.compute_dtype as string;
  if (!COMPUTE_DTYPES.includes(v as ComputeDType)) throw new UsageError(`${command}: --compute_dtype must be ${COMPUTE_DTYPES.join(' or ')}, got "${v}"`);
  return v as ComputeDType;
}
