// A frozen linear weight (OC, C) stored the way bitsandbytes stores it, as host data: 4-bit NF4/FP4 blocks
// (± double-quantized absmax) or LLM.int8 rows. What backends upload and formats read/write; no math here.

export type QuantType = 'nf4' | 'fp4' | 'int8';

/** The absmax of each 4-bit block, double-quantized: absmax[b] = nestedMap[codes[b]] * nestedAbsmax[b / nestedBlocksize] + offset. */
export interface NestedAbsmax {
  codes: Uint8Array; // (blocks)
  nestedAbsmax: Float32Array; // (ceil(blocks / nestedBlocksize))
  nestedMap: Float32Array; // (256) bitsandbytes' dynamic map
  nestedBlocksize: number; // 256
  offset: number; // the mean of the absmax before quantizing
}

/** 4-bit blocks over the row-major flattened weight; two codes a byte, the first in the high nibble. */
export interface Quantized4bit {
  type: 'nf4' | 'fp4';
  shape: readonly [number, number]; // (OC, C)
  blocksize: number; // 64 or 128 (bitsandbytes also allows 32..4096)
  packed: Uint8Array; // (ceil(OC*C / 2))
  absmax: Float32Array | NestedAbsmax; // (ceil(OC*C / blocksize))
}

/** LLM.int8 row-wise weight: w[o, c] ≈ weight[o, c] * scb[o] / 127; activations columns with |x| ≥ threshold go through in float. */
export interface QuantizedInt8 {
  type: 'int8';
  shape: readonly [number, number]; // (OC, C)
  weight: Int8Array; // (OC, C)
  scb: Float32Array; // (OC) absmax per row
  threshold: number; // llm_int8_threshold (6.0); 0 = no outlier columns
}

export type QuantizedWeight = Quantized4bit | QuantizedInt8;
