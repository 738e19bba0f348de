// The cpu addon's host quantizers in the shape formats/bnb-4bit.ts and bnb-int8.ts take them (a BlockQuantizer, a
// RowQuantizer): threaded, and byte for byte those files' TypeScript specs. Not the quantized kernels (cpu.ts).

import type { BlockQuantizer } from '../../formats/bnb-4bit.ts';
import type { RowQuantizer } from '../../formats/bnb-int8.ts';
import { loadCpuAddon } from './cpu-addon.ts';

export interface NativeQuantizers {
  blocks4bit: BlockQuantizer;
  int8Rows: RowQuantizer;
}

/** The addon's quantizers, or null when it is not built (or is a build from before them). */
export function nativeQuantizers(): NativeQuantizers | null {
  const addon = loadCpuAddon();
  if ('unavailable' in addon || typeof addon.quantize4bit !== 'function') return null;
  return {
    blocks4bit(weight, { bounds, order }, blocksize) {
      const packed = new Uint8Array(Math.ceil(weight.length / 2));
      const absmax = new Float32Array(Math.ceil(weight.length / blocksize));
      addon.quantize4bit(weight, blocksize, bounds, order, packed, absmax);
      return { packed, absmax };
    },
    int8Rows(weight, OC, C) {
      const q = new Int8Array(OC * C);
      const scb = new Float32Array(OC);
      addon.quantizeInt8Rows(weight, OC, C, q, scb);
      return { weight: q, scb };
    },
  };
}
