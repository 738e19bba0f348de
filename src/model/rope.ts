// Rotary position embedding tables as transformers computes them: inverse frequencies for the default,
// linear, dynamic-NTK and llama3 rope types, then cos/sin of position × frequency. Each step is rounded to
// float32 where torch computes in float32, so the tables match HF's bit for bit or within an ulp.
// Not the rotation itself (a backend op). Every supported type has attention_factor 1, so tables are unscaled.

import type { LlamaConfig } from '../arch/llama-config.ts';

const f = Math.fround;

/** (headDim/2) inverse frequencies; `seqLen` (the largest position + 1) matters only for dynamic scaling. */
export function ropeInvFreq(config: LlamaConfig, seqLen = 0): Float64Array {
  const scaling = config.ropeScaling;
  let base = config.ropeTheta;
  if (scaling?.type === 'dynamic') {
    const dim = config.headDim;
    const len = Math.max(seqLen, scaling.originalMaxPositions);
    base *= ((scaling.factor * len) / scaling.originalMaxPositions - (scaling.factor - 1)) ** (dim / (dim - 2));
  }
  const inv = defaultInvFreq(base, config.headDim);
  if (scaling?.type === 'linear') return inv.map((x) => f(x / scaling.factor));
  if (scaling?.type === 'llama3') return llama3InvFreq(inv, scaling);
  return inv;
}

/** cos and sin of (T, headDim/2): row t holds position[t] × invFreq; HF's rotate-half uses it for both halves. */
export function ropeTables(config: LlamaConfig, positions: readonly number[]): { cos: Float32Array; sin: Float32Array } {
  const half = config.headDim / 2;
  const cos = new Float32Array(positions.length * half);
  const sin = new Float32Array(positions.length * half);
  writeRopeTables(config, positions, cos, sin, 0);
  return { cos, sin };
}

/** ropeTables written into cos and sin from row `at` on (a decode step's rows, each at its own positions). */
export function writeRopeTables(config: LlamaConfig, positions: readonly number[], cos: Float32Array, sin: Float32Array, at: number): void {
  const half = config.headDim / 2;
  const end = positions.reduce((m, p) => Math.max(m, p + 1), 0);
  if (config.ropeScaling?.type === 'dynamic' || end > CACHED_POSITIONS) {
    const inv = ropeInvFreq(config, end);
    positions.forEach((p, t) => fillRow(inv, p, cos, sin, (at + t) * half));
    return;
  }
  const table = positionTable(config, end);
  positions.forEach((p, t) => {
    cos.set(table.cos.subarray(p * half, (p + 1) * half), (at + t) * half);
    sin.set(table.sin.subarray(p * half, (p + 1) * half), (at + t) * half);
  });
}

/** cos and sin of position p at row offset `row`. */
function fillRow(inv: Float64Array, p: number, cos: Float32Array, sin: Float32Array, row: number): void {
  for (let i = 0; i < inv.length; i++) {
    const angle = f(f(p) * inv[i]!);
    cos[row + i] = Math.cos(angle);
    sin[row + i] = Math.sin(angle);
  }
}

// Rows by position, per config whose frequencies do not depend on the length, for positions up to CACHED_POSITIONS
// (a batch or a decode step copies its rows instead of computing them).
const CACHED_POSITIONS = 16384;
const positionTables = new WeakMap<LlamaConfig, { cos: Float32Array; sin: Float32Array; rows: number }>();

/** The config's table, holding at least positions [0, end). */
function positionTable(config: LlamaConfig, end: number): { cos: Float32Array; sin: Float32Array; rows: number } {
  let table = positionTables.get(config);
  if (table && table.rows >= end) return table;
  const half = config.headDim / 2, rows = Math.min(CACHED_POSITIONS, Math.max(end, 2 * (table?.rows ?? 256)));
  const grown = { cos: new Float32Array(rows * half), sin: new Float32Array(rows * half), rows };
  const inv = ropeInvFreq(config);
  for (let p = 0; p < rows; p++) fillRow(inv, p, grown.cos, grown.sin, p * half);
  positionTables.set(config, (table = grown));
  return table;
}

/** 1 / base^(2i/dim), with torch's float32 exponent, pow and reciprocal. */
function defaultInvFreq(base: number, dim: number): Float64Array {
  const inv = new Float64Array(dim / 2);
  for (let i = 0; i < inv.length; i++) inv[i] = f(1 / f(f(base) ** f((2 * i) / dim)));
  return inv;
}

/** transformers' _compute_llama3_parameters: long wavelengths divided by factor, a smooth ramp between. */
function llama3InvFreq(inv: Float64Array, s: Extract<LlamaConfig['ropeScaling'], { type: 'llama3' }>): Float64Array {
  const lowFreqWavelen = f(s.originalMaxPositions / s.lowFreqFactor);
  const highFreqWavelen = f(s.originalMaxPositions / s.highFreqFactor);
  return inv.map((x) => {
    const wavelen = f(f(1 / x) * f(2 * Math.PI)); // torch computes scalar / tensor as reciprocal × scalar
    if (wavelen > lowFreqWavelen) return f(x / s.factor);
    if (wavelen < highFreqWavelen) return x;
    const smooth = f(f(f(f(1 / wavelen) * s.originalMaxPositions) - s.lowFreqFactor) / f(s.highFreqFactor - s.lowFreqFactor));
    return f(f(f(f(1 - smooth) * x) / s.factor) + f(smooth * x));
  });
}
