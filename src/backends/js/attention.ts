// Causal multi-head attention with GQA, key padding and packed segments for the js backend: the textbook
// algorithm, scores materialised one query row at a time. Layouts: q (B, Tq, NH, HD), k/v (B, Tkv, NKV, HD).
// A query with no allowed key is HF eager's fully masked row: uniform over all Tk keys (lse = NaN).
// Segments (B, Tkv): a query sees only the keys of its own segment (a block-diagonal causal mask, never built).
// q, k, v, out and their gradients may be f32, bf16 or f16 (read widened, written rounded); lse is f32.

import type { Tensor } from '../../engine/tensor.ts';
import { f32, i32, store, target, values } from './memory.ts';

let rowScratch = new Float64Array(0);

function scores(len: number): Float64Array {
  if (rowScratch.length < len) rowScratch = new Float64Array(len);
  return rowScratch;
}

export function attentionForward(
  out: Tensor, lse: Tensor, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null,
  B: number, Tq: number, Tk: number, Tkv: number, NH: number, NKV: number, HD: number, segments: Tensor | null = null,
): void {
  const Q = values(q), K = values(k), Vv = values(v), o = target(out), L = f32(lse);
  const m = mask ? i32(mask) : null;
  const seg = segments ? i32(segments) : null;
  const group = NH / NKV;
  const scale = 1 / Math.sqrt(HD);
  const p = scores(Tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const kh = Math.floor(h / group);
      for (let i = 0; i < Tq; i++) {
        const pos = Tk - Tq + i;
        const qo = ((b * Tq + i) * NH + h) * HD;
        let max = -Infinity;
        for (let j = 0; j <= pos; j++) {
          if ((m && m[b * Tkv + j] === 0) || (seg && seg[b * Tkv + j] !== seg[b * Tkv + pos])) {
            p[j] = -Infinity;
            continue;
          }
          const ko = ((b * Tkv + j) * NKV + kh) * HD;
          let dot = 0;
          for (let d = 0; d < HD; d++) dot += Q[qo + d]! * K[ko + d]!;
          p[j] = dot * scale;
          if (p[j]! > max) max = p[j]!;
        }
        let last = pos;
        if (max === -Infinity) {
          last = Tk - 1;
          p.fill(1 / Tk, 0, Tk);
          L[(b * NH + h) * Tq + i] = NaN;
        } else {
          let sum = 0;
          for (let j = 0; j <= pos; j++) {
            p[j] = p[j] === -Infinity ? 0 : Math.exp(p[j]! - max);
            sum += p[j]!;
          }
          for (let j = 0; j <= pos; j++) p[j]! /= sum;
          L[(b * NH + h) * Tq + i] = max + Math.log(sum);
        }
        o.fill(0, qo, qo + HD);
        for (let j = 0; j <= last; j++) {
          if (p[j] === 0) continue;
          const vo = ((b * Tkv + j) * NKV + kh) * HD;
          for (let d = 0; d < HD; d++) o[qo + d]! += p[j]! * Vv[vo + d]!;
        }
      }
    }
  }
  store(out, o);
}

// Training shape (Tq = Tk = Tkv = T). With P = softmax(S): dV = P^T dO, dP = dO V^T, dS = P (dP - rowsum(dO * O)),
// dQ = scale dS K, dK = scale dS^T Q. Probabilities are recomputed from the saved log-sum-exp.
export function attentionBackward(
  dq: Tensor, dk: Tensor, dv: Tensor, dout: Tensor, out: Tensor, lse: Tensor,
  q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null,
  B: number, T: number, NH: number, NKV: number, HD: number, segments: Tensor | null = null,
): void {
  const dO = values(dout), O = values(out), L = f32(lse), Q = values(q), K = values(k), Vv = values(v);
  const dQ = target(dq), dK = target(dk), dV = target(dv);
  const m = mask ? i32(mask) : null;
  const seg = segments ? i32(segments) : null;
  const group = NH / NKV;
  const scale = 1 / Math.sqrt(HD);
  dQ.fill(0);
  dK.fill(0);
  dV.fill(0);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const kh = Math.floor(h / group);
      for (let i = 0; i < T; i++) {
        const lsei = L[(b * NH + h) * T + i]!;
        const uniform = Number.isNaN(lsei);
        const qo = ((b * T + i) * NH + h) * HD;
        let rowDot = 0;
        for (let d = 0; d < HD; d++) rowDot += dO[qo + d]! * O[qo + d]!;
        const last = uniform ? T - 1 : i;
        for (let j = 0; j <= last; j++) {
          if (!uniform && ((m && m[b * T + j] === 0) || (seg && seg[b * T + j] !== seg[b * T + i]))) continue;
          const ko = ((b * T + j) * NKV + kh) * HD;
          let sc = 0, dp = 0;
          for (let d = 0; d < HD; d++) {
            sc += Q[qo + d]! * K[ko + d]!;
            dp += dO[qo + d]! * Vv[ko + d]!;
          }
          const p = uniform ? 1 / T : Math.exp(sc * scale - lsei);
          const ds = p * (dp - rowDot) * scale;
          for (let d = 0; d < HD; d++) {
            dV[ko + d]! += p * dO[qo + d]!;
            dQ[qo + d]! += ds * K[ko + d]!;
            dK[ko + d]! += ds * Q[qo + d]!;
          }
        }
      }
    }
  }
  store(dq, dQ);
  store(dk, dK);
  store(dv, dV);
}
