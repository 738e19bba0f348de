// Parsing a size such as --max_shard_size: "400MB", "2GB", "5GiB" or a byte count, with Hugging Face's
// meaning (KB/MB/GB = powers of 10, KiB/MiB/GiB = powers of 2, "Gb" with a lowercase b = gigabits).

import { UserError } from '../errors.ts';

const UNITS: Readonly<Record<string, number>> = {
  '': 1, B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, TIB: 2 ** 40,
};

/** Bytes in `size`; `what` names the value in the error (e.g. "--max_shard_size"). */
export function parseSize(size: string | number, what = 'size'): number {
  if (typeof size === 'number') {
    if (Number.isSafeInteger(size) && size > 0) return size;
  } else {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(size);
    const unit = m ? UNITS[m[2]!.toUpperCase()] : undefined;
    if (m && unit !== undefined) {
      const bits = /^[KMGTkmgt]b$/.test(m[2]!); // "Gb" is gigabits; "GiB" never is
      const bytes = Math.floor((Number(m[1]) * unit) / (bits ? 8 : 1));
      if (bytes > 0) return bytes;
    }
  }
  throw new UserError(`${what} ${JSON.stringify(size)} is not a size: use a byte count or a number with a unit, e.g. 400MB, 2GB, 5GiB`);
}
