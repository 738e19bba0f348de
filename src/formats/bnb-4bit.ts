// bitsandbytes' 4-bit quantization (NF4/FP4) and its double quantization of the absmax, in float32 exactly as
// its pure-torch backend computes them, so codes and absmax match bitsandbytes byte for byte. The reference
// math and the host form only: kernels that compute with these weights live in the backends.

import { code4bit, type NestedAbsmax, type Quantized4bit } from '../engine/quantized.ts';
import { dynamicMap } from './bnb-codes.ts';
import { torchMeanF32 } from './torch-sum.ts';

const f = Math.fround;
const TINY = f(1e-38); // the absmax floor bitsandbytes clamps with
export const BLOCKSIZES_4BIT: readonly number[] = [32, 64, 128, 256, 512, 1024, 2048, 4096];
const NESTED_BLOCKSIZE = 256;

/** A table's code midpoints, sorted (15 for 4 bits), and the code each interval between them maps to. */
export interface CodeBounds {
  bounds: Float32Array;
  order: Uint8Array;
}

/** Codes blocks of a weight (an odd count padded with a 0): two codes a byte, and each block's absmax. */
export type BlockQuantizer = (weight: Float32Array, code: CodeBounds, blocksize: number) => { packed: Uint8Array; absmax: Float32Array };

/**
 * Quantizes a row-major (OC, C) float32 weight into blocks of `blocksize` values: each scaled by its absmax into
 * [-1, 1] and coded as the nearest table value (ties go to the lower one). `doubleQuant` codes the absmax with
 * the dynamic map in blocks of 256 around their mean, as bitsandbytes' compress_statistics does. `dtype`: the one the
 * weight's values are in (bitsandbytes' quant_state.dtype), which dequantized values are rounded to. `blocks`: what
 * codes the blocks, quantizeBlocks below (the spec) or a native one that gives the same bytes.
 */
export function quantize4bit(
  weight: Float32Array, shape: readonly [number, number], type: 'nf4' | 'fp4', blocksize = 64, doubleQuant = false,
  dtype: Quantized4bit['dtype'] = 'f32', blocks: BlockQuantizer = quantizeBlocks,
): Quantized4bit {
  if (!BLOCKSIZES_4BIT.includes(blocksize)) throw new Error(`4-bit blocksize ${blocksize} is not one of ${BLOCKSIZES_4BIT.join(', ')}`);
  if (weight.length !== shape[0] * shape[1]) throw new Error(`quantize4bit: ${weight.length} values do not fill shape [${shape.join(', ')}]`);
  const { packed, absmax } = blocks(weight, codeBounds(code4bit(type)), blocksize);
  return { type, shape: [shape[0], shape[1]], blocksize, packed, absmax: doubleQuant ? quantizeAbsmax(absmax) : absmax, dtype };
}

/**
 * The spec of a BlockQuantizer: each block scaled into [-1, 1] by its absmax (scaleBlock), then coded by
 * nearestCode. An odd count's padding is the value 0, unscaled.
 */
export const quantizeBlocks: BlockQuantizer = (weight, code, blocksize) => {
  const n = weight.length;
  const absmax = new Float32Array(Math.ceil(n / blocksize));
  const scaled = new Float32Array(blocksize);
  const packed = new Uint8Array(Math.ceil(n / 2));
  for (let b = 0; b < absmax.length; b++) {
    const start = b * blocksize;
    const values = weight.subarray(start, Math.min(n, start + blocksize));
    absmax[b] = scaleBlock(values, scaled, blocksize);
    for (let i = 0; i < values.length; i++) {
      const c = nearestCode(scaled[i]!, code);
      const at = (start + i) >> 1;
      packed[at] = (start + i) & 1 ? packed[at]! | c : c << 4;
    }
  }
  if (n & 1) packed[n >> 1] = packed[n >> 1]! | nearestCode(0, code);
  return { packed, absmax };
};

/**
 * `values` (one block) scaled into [-1, 1] by their absmax into `out`; returns the absmax kept. A whole block
 * multiplies by the absmax's float32 reciprocal and keeps the absmax as it is; a short (last) block divides by its
 * absmax floored at 1e-38 and keeps the floored one.
 */
function scaleBlock(values: Float32Array, out: Float32Array, blocksize: number): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]!));
  const floored = Math.max(m, TINY);
  if (values.length === blocksize) {
    const inverse = f(1 / floored);
    for (let i = 0; i < values.length; i++) out[i] = clamp1(f(values[i]! * inverse));
    return m;
  }
  for (let i = 0; i < values.length; i++) out[i] = clamp1(f(values[i]! / floored));
  return floored;
}

/** Double quantization: absmax − mean, coded with the dynamic map in blocks of 256 (8-bit blockwise). */
function quantizeAbsmax(absmax: Float32Array): NestedAbsmax {
  const offset = torchMeanF32(absmax);
  const centered = new Float32Array(absmax.length);
  for (let b = 0; b < absmax.length; b++) centered[b] = absmax[b]! - offset;
  const nestedMap = dynamicMap();
  const table = codeBounds(nestedMap);
  const codes = new Uint8Array(centered.length);
  const nestedAbsmax = new Float32Array(Math.ceil(centered.length / NESTED_BLOCKSIZE));
  const scaled = new Float32Array(NESTED_BLOCKSIZE);
  for (let b = 0; b < nestedAbsmax.length; b++) {
    const values = centered.subarray(b * NESTED_BLOCKSIZE, (b + 1) * NESTED_BLOCKSIZE);
    nestedAbsmax[b] = scaleBlock(values, scaled, NESTED_BLOCKSIZE);
    for (let i = 0; i < values.length; i++) codes[b * NESTED_BLOCKSIZE + i] = nearestCode(scaled[i]!, table);
  }
  return { codes, nestedAbsmax, nestedMap, nestedBlocksize: NESTED_BLOCKSIZE, offset };
}

/**
 * torch.bucketize against the midpoints of the sorted table, mapped back to the table's own index: the code
 * whose value is nearest, the lower one on a tie (FP4's two zeros: 0 takes code 0, small positives code 8).
 */
export function codeBounds(code: Float32Array): CodeBounds {
  const order = [...code.keys()].sort((a, b) => code[a]! - code[b]! || a - b);
  const bounds = order.slice(1).map((o, i) => f(f(code[order[i]!]! + code[o]!) / 2));
  return { bounds: Float32Array.from(bounds), order: Uint8Array.from(order) };
}

/**
 * The code of a scaled value: the one after every bound < x (a NaN is above none: the lowest code). Branch-free
 * halving over the 2^k - 1 bounds of a 2^k-entry table.
 */
function nearestCode(x: number, code: CodeBounds): number {
  const bounds = code.bounds;
  let lo = 0;
  for (let step = (bounds.length + 1) >> 1; step > 0; step >>= 1) lo += bounds[lo + step - 1]! < x ? step : 0;
  return code.order[lo]!;
}

function clamp1(x: number): number {
  return x < -1 ? -1 : x > 1 ? 1 : x;
}
