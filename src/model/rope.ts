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
  const inv = invFreqFor(config, positions.reduce((m, p) => Math.max(m, p + 1), 0));
  const half = inv.length;
  positions.forEach((p, t) => {
    const row = (at + t) * half;
    for (let i = 0; i < half; i++) {
      const angle = f(f(p) * inv[i]!);
      cos[row + i] = Math.cos(angle);
      sin[row + i] = Math.sin(angle);
    }
  });
}

const fixedInvFreq = new WeakMap<LlamaConfig, Float64Array>();

/** ropeInvFreq, computed once per config unless dynamic scaling makes it depend on the length. */
function invFreqFor(config: LlamaConfig, seqLen: number): Float64Array {
  if (config.ropeScaling?.type === 'dynamic') return ropeInvFreq(config, seqLen);
  let inv = fixedInvFreq.get(config);
  if (!inv) fixedInvFreq.set(config, (inv = ropeInvFreq(config)));
  return inv;
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
