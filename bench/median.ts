// The median the paired benchmarks report (the upper middle of an even count). Not a statistics library.

export function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
}
