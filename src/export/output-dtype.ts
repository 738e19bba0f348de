// The --dtype of an export ("float16", "bfloat16", "float32", as torch names them) and the storage dtype it
// means; without one, an export keeps each weight's own dtype. Not the conversion itself (host-tensor.ts).

import { UserError } from '../errors.ts';
import type { StorageDType } from '../formats/host-tensor.ts';

export type FloatDType = 'F32' | 'F16' | 'BF16';

const BY_NAME: Readonly<Record<string, FloatDType>> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };

export const DTYPE_NAMES: Readonly<Record<FloatDType, string>> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** The storage dtype of a torch dtype name; `flag` names the option in the message. */
export function parseOutputDType(name: string, flag = '--dtype'): FloatDType {
  const d = BY_NAME[name.replace(/^torch\./, '')];
  if (!d) throw new UserError(`${flag} ${name} is not one of ${Object.keys(BY_NAME).join(', ')}`);
  return d;
}

export function isFloatDType(d: StorageDType): d is FloatDType {
  return d === 'F32' || d === 'F16' || d === 'BF16';
}
