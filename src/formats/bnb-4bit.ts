// bitsandbytes' 4-bit quantization (NF4/FP4) and its double quantization of the absmax, in float32 exactly as
// its pure-torch backend computes them, so codes and absmax match bitsandbytes byte for byte. The reference
// math and the host form only: kernels that compute with these weights live in the backends.

import { roundingTo } from '../engine/dtype.ts';
import { blockAbsmax, code4bit, type NestedAbsmax, type Quantized4bit } from '../engine/quantized.ts';
import { dynamicMap } from './bnb-codes.ts';
import { torchMeanF32 } from './torch-sum.ts';

const f = Math.fround;
const TINY = f(1e-38); // the absmax floor bitsandbytes clamps with
export const BLOCKSIZES_4BIT: readonly number[] = [32, 64, 128, 256, 512, 1024, 2048, 4096];
const NESTED_BLOCKSIZE = 256;

/**
 * Quantizes a row-major (OC, C) float32 weight into blocks of `blocksize` values: each scaled by its absmax into
 * [-1, 1] and coded as the nearest table value (ties go to the lower one). `doubleQuant` codes the absmax with
 * the dynamic map in blocks of 256 around their mean, as bitsandbytes' compress_statistics does. `dtype`: the one the
 * weight's values are in (bitsandbytes' quant_state.dtype), which dequantized values are rounded to.
 */
export function quantize4bit(
  weight: Float32Array, shape: readonly [number, number], type: 'nf4' | 'fp4', blocksize = 64, doubleQuant = false,
  dtype: Quantized4bit['dtype'] = 'f32',
): Quantized4bit {
  if (!BLOCKSIZES_4BIT.includes(blocksize)) throw new Error(`4-bit blocksize ${blocksize} is not one of ${BLOCKSIZES_4BIT.join(', ')}`);
  if (weight.length !== shape[0] * shape[1]) throw new Error(`quantize4bit: ${weight.length} values do not fill shape [${shape.join(', ')}]`);
  const code = code4bit(type);
  const { scaled, absmax } = scaleBlocks(weight, blocksize);
  const packed = new Uint8Array(Math.ceil(weight.length / 2));
  const padded = new Float32Array(2 * packed.length); // an odd count is padded with a 0
  padded.set(scaled);
  const codes = nearestCodes(padded, code);
  for (let i = 0; i < packed.length; i++) packed[i] = (codes[2 * i]! << 4) | codes[2 * i + 1]!;
  return { type, shape: [shape[0], shape[1]], blocksize, packed, absmax: doubleQuant ? quantizeAbsmax(absmax) : absmax, dtype };
}

/** The weight (OC * C values, row-major) as bitsandbytes' dequantize_4bit: code value × its block's absmax, rounded to q.dtype. */
export function dequantize4bit(q: Quantized4bit): Float32Array {
  const n = q.shape[0] * q.shape[1];
  const code = code4bit(q.type), round = roundingTo(q.dtype);
  const absmax = absmaxOf(q);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const byte = q.packed[i >> 1]!;
    out[i] = round(code[i & 1 ? byte & 15 : byte >> 4]! * absmax[Math.floor(i / q.blocksize)]!);
  }
  return out;
}

/** Each block's absmax, undoing double quantization. */
export function absmaxOf(q: Quantized4bit): Float32Array {
  const a = q.absmax;
  return a instanceof Float32Array ? a : Float32Array.from(a.codes, (_, b) => blockAbsmax(q, b));
}

/**
 * Values scaled into [-1, 1] by their block's absmax. A whole block multiplies by the absmax's float32
 * reciprocal and keeps the absmax as it is; the short last block divides by its absmax floored at 1e-38.
 */
function scaleBlocks(values: Float32Array, blocksize: number): { scaled: Float32Array; absmax: Float32Array } {
  const n = values.length;
  const absmax = new Float32Array(Math.ceil(n / blocksize));
  const scaled = new Float32Array(n);
  for (let b = 0; b < absmax.length; b++) {
    const start = b * blocksize;
    const end = Math.min(n, start + blocksize);
    let m = 0;
    for (let i = start; i < end; i++) m = Math.max(m, Math.abs(values[i]!));
    const whole = end - start === blocksize;
    const floored = Math.max(m, TINY);
    const inverse = f(1 / floored);
    for (let i = start; i < end; i++) scaled[i] = clamp1(whole ? f(values[i]! * inverse) : f(values[i]! / floored));
    absmax[b] = whole ? m : floored;
  }
  return { scaled, absmax };
}

/** Double quantization: absmax − mean, coded with the dynamic map in blocks of 256 (8-bit blockwise). */
function quantizeAbsmax(absmax: Float32Array): NestedAbsmax {
  const offset = torchMeanF32(absmax);
  const centered = absmax.map((a) => f(a - offset));
  const nestedMap = dynamicMap();
  const { scaled, absmax: nestedAbsmax } = scaleBlocks(centered, NESTED_BLOCKSIZE);
  return { codes: nearestCodes(scaled, nestedMap), nestedAbsmax, nestedMap, nestedBlocksize: NESTED_BLOCKSIZE, offset };
}

/**
 * torch.bucketize against the midpoints of the sorted table, mapped back to the table's own index: the code
 * whose value is nearest, the lower one on a tie (FP4's two zeros: 0 takes code 0, small positives code 8).
 */
function nearestCodes(scaled: Float32Array, code: Float32Array): Uint8Array {
  const order = [...code.keys()].sort((a, b) => code[a]! - code[b]! || a - b);
  const bounds = order.slice(1).map((o, i) => f(f(code[order[i]!]! + code[o]!) / 2));
  const out = new Uint8Array(scaled.length);
  for (let i = 0; i < scaled.length; i++) {
    const x = scaled[i]!;
    let lo = 0, hi = bounds.length; // first bound >= x
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (bounds[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    out[i] = order[lo]!;
  }
  return out;
}

function clamp1(x: number): number {
  return x < -1 ? -1 : x > 1 ? 1 : x;
}
