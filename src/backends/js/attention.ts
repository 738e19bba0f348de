// Causal multi-head attention with GQA and key padding for the js backend: the textbook algorithm,
// scores materialised one query row at a time. Layouts: q (B, Tq, NH, HD), k/v (B, Tkv, NKV, HD).

import type { Tensor } from '../../engine/tensor.ts';
import { f32, i32 } from './memory.ts';

let rowScratch = new Float64Array(0);

function scores(len: number): Float64Array {
  if (rowScratch.length < len) rowScratch = new Float64Array(len);
  return rowScratch;
}

export function attentionForward(
  out: Tensor, lse: Tensor, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null,
  B: number, Tq: number, Tk: number, Tkv: number, NH: number, NKV: number, HD: number,
): void {
  const o = f32(out), L = f32(lse), Q = f32(q), K = f32(k), Vv = f32(v);
  const m = mask ? i32(mask) : null;
  const group = NH / NKV;
  const scale = 1 / Math.sqrt(HD);
  const s = scores(Tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const kh = Math.floor(h / group);
      for (let i = 0; i < Tq; i++) {
        const pos = Tk - Tq + i;
        const qo = ((b * Tq + i) * NH + h) * HD;
        let max = -Infinity;
        for (let j = 0; j <= pos; j++) {
          if (m && m[b * Tkv + j] === 0) {
            s[j] = -Infinity;
            continue;
          }
          const ko = ((b * Tkv + j) * NKV + kh) * HD;
          let dot = 0;
          for (let d = 0; d < HD; d++) dot += Q[qo + d]! * K[ko + d]!;
          s[j] = dot * scale;
          if (s[j]! > max) max = s[j]!;
        }
        const oo = qo;
        o.fill(0, oo, oo + HD);
        if (max === -Infinity) {
          L[(b * NH + h) * Tq + i] = -Infinity;
          continue;
        }
        let sum = 0;
        for (let j = 0; j <= pos; j++) {
          const p = s[j] === -Infinity ? 0 : Math.exp(s[j]! - max);
          s[j] = p;
          sum += p;
        }
        for (let j = 0; j <= pos; j++) {
          const p = s[j]! / sum;
          if (p === 0) continue;
          const vo = ((b * Tkv + j) * NKV + kh) * HD;
          for (let d = 0; d < HD; d++) o[oo + d]! += p * Vv[vo + d]!;
        }
        L[(b * NH + h) * Tq + i] = max + Math.log(sum);
      }
    }
  }
}

// Training shape (Tq = Tk = Tkv = T). With P = softmax(S): dV = P^T dO, dP = dO V^T, dS = P (dP - rowsum(dO * O)),
// dQ = scale dS K, dK = scale dS^T Q. Probabilities are recomputed from the saved log-sum-exp.
export function attentionBackward(
  dq: Tensor, dk: Tensor, dv: Tensor, dout: Tensor, out: Tensor, lse: Tensor,
  q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null,
  B: number, T: number, NH: number, NKV: number, HD: number,
): void {
  const dQ = f32(dq), dK = f32(dk), dV = f32(dv), dO = f32(dout), O = f32(out), L = f32(lse);
  const Q = f32(q), K = f32(k), Vv = f32(v);
  const m = mask ? i32(mask) : null;
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
        if (lsei === -Infinity) continue;
        const qo = ((b * T + i) * NH + h) * HD;
        let rowDot = 0;
        for (let d = 0; d < HD; d++) rowDot += dO[qo + d]! * O[qo + d]!;
        for (let j = 0; j <= i; j++) {
          if (m && m[b * T + j] === 0) continue;
          const ko = ((b * T + j) * NKV + kh) * HD;
          let sc = 0, dp = 0;
          for (let d = 0; d < HD; d++) {
            sc += Q[qo + d]! * K[ko + d]!;
            dp += dO[qo + d]! * Vv[ko + d]!;
          }
          const p = Math.exp(sc * scale - lsei);
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
}
