// Embedding, RMSNorm, rotary embedding and SwiGLU for the js backend. Activations (out, inp, dout, dinp, x, gate,
// up, dgate, dup) may be f32, bf16 or f16, read widened and written rounded; dtable, dweight, rstd, cos, sin are f32.

import type { Tensor } from '../../engine/tensor.ts';
import { f32, i32, readF32, store, target, values } from './memory.ts';

const tableScratch = { buf: new Float32Array(0) };
const normScratch = { buf: new Float32Array(0) };

// out (N, C) = table (V, C)[ids (N)]
export function embeddingForward(out: Tensor, ids: Tensor, table: Tensor, N: number, C: number): void {
  const o = target(out), id = i32(ids);
  const V = table.shape[0]!;
  const w = readF32(table, tableScratch);
  for (let n = 0; n < N; n++) {
    const tok = id[n]!;
    if (tok < 0 || tok >= V) throw new Error(`token id ${tok} at position ${n} is outside the vocabulary (size ${V})`);
    o.set(w.subarray(tok * C, tok * C + C), n * C);
  }
  store(out, o);
}

export function embeddingBackward(dtable: Tensor, dout: Tensor, ids: Tensor, N: number, C: number): void {
  const dw = f32(dtable), g = values(dout), id = i32(ids);
  for (let n = 0; n < N; n++) {
    const row = id[n]! * C;
    for (let c = 0; c < C; c++) dw[row + c]! += g[n * C + c]!;
  }
}

// out = inp * rstd * weight, rstd = 1 / sqrt(mean(inp^2) + eps) per row
export function rmsnormForward(out: Tensor, rstd: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, eps: number): void {
  const x = values(inp), o = target(out), r = f32(rstd);
  const w = readF32(weight, normScratch);
  for (let n = 0; n < N; n++) {
    const row = n * C;
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[row + c]! * x[row + c]!;
    const rs = 1 / Math.sqrt(ss / C + eps);
    r[n] = rs;
    for (let c = 0; c < C; c++) o[row + c] = x[row + c]! * rs * w[c]!;
  }
  store(out, o);
}

// dinp = rstd * (w*dout) - rstd^3 / C * inp * sum(w*dout*inp) ; dweight += sum over rows of dout * inp * rstd
export function rmsnormBackward(
  dinp: Tensor, dweight: Tensor | null, dout: Tensor, inp: Tensor, weight: Tensor, rstd: Tensor, N: number, C: number,
): void {
  const g = values(dout), x = values(inp), dx = target(dinp), r = f32(rstd);
  const w = readF32(weight, normScratch);
  const dw = dweight ? f32(dweight) : null;
  for (let n = 0; n < N; n++) {
    const row = n * C;
    const rs = r[n]!;
    let dot = 0;
    for (let c = 0; c < C; c++) dot += w[c]! * g[row + c]! * x[row + c]!;
    const k = (rs * rs * rs * dot) / C;
    for (let c = 0; c < C; c++) {
      const xc = x[row + c]!, gc = g[row + c]!;
      dx[row + c] = rs * w[c]! * gc - k * xc;
      if (dw) dw[c]! += gc * xc * rs;
    }
  }
  store(dinp, dx);
}

// In place on x (B, T, H, HD), HF rotate-half: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin); inverse transposes.
export function rope(x: Tensor, cos: Tensor, sin: Tensor, B: number, T: number, H: number, HD: number, inverse: boolean): void {
  const d = target(x), cs = f32(cos), sn = f32(sin);
  const half = HD / 2;
  const sign = inverse ? -1 : 1;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const tab = t * half;
      for (let h = 0; h < H; h++) {
        const base = ((b * T + t) * H + h) * HD;
        for (let i = 0; i < half; i++) {
          const c = cs[tab + i]!, s = sign * sn[tab + i]!;
          const x1 = d[base + i]!, x2 = d[base + i + half]!;
          d[base + i] = x1 * c - x2 * s;
          d[base + i + half] = x2 * c + x1 * s;
        }
      }
    }
  }
  store(x, d);
}

// out = silu(gate) * up
export function swigluForward(out: Tensor, gate: Tensor, up: Tensor, n: number): void {
  const g = values(gate), u = values(up), o = target(out);
  for (let i = 0; i < n; i++) {
    const x = g[i]!;
    o[i] = (x / (1 + Math.exp(-x))) * u[i]!;
  }
  store(out, o);
}

export function swigluBackward(dgate: Tensor, dup: Tensor, dout: Tensor, gate: Tensor, up: Tensor, n: number): void {
  const d = values(dout), g = values(gate), u = values(up), dg = target(dgate), du = target(dup);
  for (let i = 0; i < n; i++) {
    const x = g[i]!;
    const sig = 1 / (1 + Math.exp(-x));
    const dy = d[i]!;
    du[i] = dy * x * sig;
    dg[i] = dy * u[i]! * sig * (1 + x * (1 - sig));
  }
  store(dgate, dg);
  store(dup, du);
}
