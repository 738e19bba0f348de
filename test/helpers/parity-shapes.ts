// The shapes the backend parity tests (cpu-parity, cuda-parity) share: attention in awkward and realistic
// shapes, packed segments, KV-cache decoding, and model widths for every other op. Shapes only; no tensors, no tolerances.

/** Training-shape attention: q (B, T, NH, HD), k/v (B, T, NKV, HD); batch row b left-padded by pads[b] keys. */
export interface AttentionShape {
  B: number;
  T: number;
  NH: number;
  NKV: number;
  HD: number;
  pads: number[]; // [] = no mask; pads[b] = T: a fully padded row (every query uniform)
  holes: [number, number][]; // extra masked keys (b, j) inside the mask
}

/**
 * LLaMA-family widths for one layer on a batch of B*T = N rows: hidden C, NH query heads over NKV key/value
 * heads of HD, MLP width F, vocab V, LoRA rank r. N*C = 2^20: the cpu pool's chunks hold at least
 * kMinTaskWork = 2^16 elements (native/cpu/src/pool.h), so an op over (N, C) runs in 8 chunks on 2 threads
 * and 16 on 7. Small enough for the js reference (attention's T^2 costs about a second per shape).
 */
export interface ModelShape {
  name: string;
  B: number;
  T: number;
  C: number;
  NH: number;
  NKV: number;
  HD: number;
  F: number;
  V: number;
  r: number;
  pads: number[]; // left padding of each batch row, for attention
}

export const MODEL_SHAPES: readonly ModelShape[] = [
  { name: 'llama-7b (MHA, HD 128)', B: 2, T: 128, C: 4096, NH: 32, NKV: 32, HD: 128, F: 11008, V: 32000, r: 8, pads: [37, 0] },
  { name: 'tinyllama-1.1b (GQA 32:4, HD 64)', B: 4, T: 128, C: 2048, NH: 32, NKV: 4, HD: 64, F: 5632, V: 32000, r: 16, pads: [0, 128, 5, 70] },
];

/** Awkward sizes (odd, not multiples of the kernels' tiles, GQA, holes), then each model shape's attention. */
export const ATTENTION_SHAPES: readonly AttentionShape[] = [
  { B: 2, T: 37, NH: 4, NKV: 2, HD: 8, pads: [0, 5], holes: [[1, 11]] },
  { B: 2, T: 77, NH: 4, NKV: 1, HD: 64, pads: [9, 0], holes: [[1, 11]] },
  { B: 1, T: 130, NH: 2, NKV: 2, HD: 128, pads: [], holes: [] },
  { B: 3, T: 70, NH: 4, NKV: 4, HD: 32, pads: [0, 70, 3], holes: [[2, 40]] },
  { B: 1, T: 20, NH: 2, NKV: 1, HD: 100, pads: [2], holes: [] },
  { B: 2, T: 11, NH: 6, NKV: 2, HD: 10, pads: [0, 3], holes: [] },
  { B: 2, T: 11, NH: 6, NKV: 6, HD: 10, pads: [], holes: [] },
  { B: 1, T: 150, NH: 4, NKV: 2, HD: 16, pads: [7], holes: [] },
  ...MODEL_SHAPES.map(({ B, T, NH, NKV, HD, pads }) => ({ B, T, NH, NKV, HD, pads, holes: [[B - 1, T - 2]] as [number, number][] })),
];

/** Decoding against a KV cache: Tq new queries, Tk valid of Tkv cached keys; row b's first pads[b] keys masked. */
export interface DecodeShape {
  B: number;
  Tq: number;
  Tk: number;
  Tkv: number;
  NH: number;
  NKV: number;
  HD: number;
  pads: number[];
}

export const DECODE_SHAPES: readonly DecodeShape[] = [
  { B: 2, Tq: 1, Tk: 20, Tkv: 32, NH: 4, NKV: 2, HD: 64, pads: [0, 4] },
  { B: 2, Tq: 3, Tk: 20, Tkv: 32, NH: 4, NKV: 2, HD: 8, pads: [0, 4] },
  { B: 2, Tq: 20, Tk: 20, Tkv: 32, NH: 4, NKV: 2, HD: 64, pads: [0, 4] },
  { B: 2, Tq: 17, Tk: 40, Tkv: 48, NH: 4, NKV: 2, HD: 64, pads: [0, 4] },
  { B: 2, Tq: 3, Tk: 7, Tkv: 16, NH: 6, NKV: 2, HD: 10, pads: [2, 0] },
  { B: 2, Tq: 2, Tk: 5, Tkv: 16, NH: 6, NKV: 2, HD: 10, pads: [5, 0] }, // row 0 sees no valid key
  { B: 2, Tq: 1, Tk: 100, Tkv: 130, NH: 6, NKV: 2, HD: 10, pads: [2, 0] },
  { B: 4, Tq: 1, Tk: 100, Tkv: 128, NH: 32, NKV: 8, HD: 128, pads: [0, 7, 0, 30] },
];

/** The (B, T) i32 key mask: 0 for row b's first pads[b] keys and at each hole, 1 elsewhere. */
export function paddingMask(B: number, T: number, pads: readonly number[], holes: readonly (readonly [number, number])[] = []): Int32Array {
  const m = new Int32Array(B * T).fill(1);
  pads.forEach((p, b) => m.fill(0, b * T, b * T + p));
  for (const [b, j] of holes) m[b * T + j] = 0;
  return m;
}

/** Attention over packed rows: row b is runs of lens[b]'s lengths, then one run of whatever is left (the padding). */
export interface SegmentShape {
  B: number;
  T: number;
  NH: number;
  NKV: number;
  HD: number;
  lens: number[][];
}

/** Runs starting and ending inside and across the cpu kernel's 32-query blocks and 64-key tiles; one-token runs. */
export const SEGMENT_SHAPES: readonly SegmentShape[] = [
  { B: 2, T: 37, NH: 4, NKV: 2, HD: 8, lens: [[5, 1, 20], [36]] },
  { B: 1, T: 150, NH: 4, NKV: 2, HD: 64, lens: [[40, 1, 70]] },
  { B: 3, T: 130, NH: 2, NKV: 2, HD: 128, lens: [[64, 64], [1, 1, 1, 100], [31, 33, 66]] },
  { B: 2, T: 11, NH: 6, NKV: 6, HD: 10, lens: [[3, 3, 3], [11]] },
  { B: 2, T: 128, NH: 4, NKV: 1, HD: 32, lens: [[17, 80, 1], [127]] },
];

/** Packed segments against a KV cache: the Tq queries fall in the last runs of each row. */
export const SEGMENT_DECODE = { B: 2, Tq: 40, Tk: 100, Tkv: 110, NH: 4, NKV: 2, HD: 16, lens: [[50, 20, 12], [99]] } as const;

/** (B, T) segment ids: row b numbers its runs from 1 (lens[b], then the rest of the row as one more run). */
export function segmentIds(T: number, lens: readonly (readonly number[])[]): Int32Array {
  const ids = new Int32Array(lens.length * T);
  lens.forEach((row, b) => {
    let t = 0;
    row.forEach((n, s) => ids.fill(s + 1, b * T + t, b * T + (t += n)));
    ids.fill(row.length + 1, b * T + t, (b + 1) * T);
  });
  return ids;
}
