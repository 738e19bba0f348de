// Greedy decoding's choice: the first index of the largest of n values from x[from] on, as a left-to-right scan
// that moves on only to a strictly greater value (torch.argmax's choice on ties; a NaN never wins, except at the
// first place). The host's (generate/sampling.ts) and the js and cuda backends' argmaxRows.

export function argmax(x: Float32Array, from = 0, n = x.length - from): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[from + i]! > x[from + best]!) best = i;
  return best;
}
