// Rotary position tables as transformers computes them: default, linear, dynamic-NTK and Llama-3
// frequency scaling. Arithmetic mirrors torch's float32 (Math.fround) so positions far from 0 agree.

import type { LlamaConfig } from './llama-config.ts';

type RopeConfig = Pick<LlamaConfig, 'headDim' | 'ropeTheta' | 'ropeScaling' | 'maxPositionEmbeddings'>;

const f = Math.fround;

/** Inverse frequencies (HD/2) for a sequence of `seqLen` positions (seqLen matters only for dynamic scaling). */
export function ropeInvFreq(config: RopeConfig, seqLen = 0): Float32Array {
  const dim = config.headDim;
  const scaling = config.ropeScaling;
  let base = config.ropeTheta;
  if (scaling?.type === 'dynamic' && seqLen > scaling.originalMaxPositions) {
    const orig = scaling.originalMaxPositions;
    base = base * ((scaling.factor * seqLen) / orig - (scaling.factor - 1)) ** (dim / (dim - 2));
  }
  const inv = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) inv[i] = f(1 / f(Math.pow(base, f((2 * i) / dim))));
  if (scaling?.type === 'linear') for (let i = 0; i < inv.length; i++) inv[i] = f(inv[i]! / scaling.factor);
  if (scaling?.type === 'llama3') {
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions: old } = scaling;
    const lowWavelen = old / lowFreqFactor;
    const highWavelen = old / highFreqFactor;
    for (let i = 0; i < inv.length; i++) {
      const wavelen = (2 * Math.PI) / inv[i]!;
      if (wavelen > lowWavelen) inv[i] = f(inv[i]! / factor);
      else if (wavelen >= highWavelen) {
        const smooth = (old / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        inv[i] = f((1 - smooth) * (inv[i]! / factor) + smooth * inv[i]!);
      }
    }
  }
  return inv;
}

/** cos and sin tables (positions.length, HD/2) for the rotate-half layout. */
export function ropeTables(config: RopeConfig, positions: readonly number[]): { cos: Float32Array; sin: Float32Array } {
  const seqLen = positions.length ? Math.max(...positions) + 1 : 0;
  const inv = ropeInvFreq(config, seqLen);
  const half = inv.length;
  const cos = new Float32Array(positions.length * half);
  const sin = new Float32Array(positions.length * half);
  positions.forEach((pos, t) => {
    for (let i = 0; i < half; i++) {
      const angle = f(pos * inv[i]!);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  });
  return { cos, sin };
}
