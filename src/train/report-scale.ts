// The numbers behind report.html's axes and lines: "nice" ticks (1, 2, 2.5 or 5 times a power of ten) that
// round the axis out to them, decade-based ticks for a log axis, tick labels, and the smoothing of a noisy
// curve. Pure functions; not the SVG (report-chart.ts).

export interface Axis {
  lo: number;
  hi: number;
  ticks: number[];
}

/** 1, 2, 2.5 or 5 times a power of ten: the smallest such step at least `raw`. */
export function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw));
  const m = [1, 2, 2.5, 5, 10].find((c) => c * power >= raw * (1 - 1e-9))!;
  return m * power;
}

/** About `count` ticks at a nice step, the axis widened to the ticks around [lo, hi]; `integer` keeps steps whole. */
export function niceAxis(lo: number, hi: number, count = 5, integer = false): Axis {
  if (!(hi > lo)) [lo, hi] = lo === 0 ? [0, 1] : [lo - Math.abs(lo) * 0.1, hi + Math.abs(hi) * 0.1];
  let step = niceStep((hi - lo) / Math.max(1, count - 1));
  if (integer) step = Math.max(1, Math.round(step));
  const first = Math.floor(lo / step + 1e-9), last = Math.ceil(hi / step - 1e-9);
  const ticks = Array.from({ length: last - first + 1 }, (_, i) => round((first + i) * step, step));
  return { lo: ticks[0]!, hi: ticks.at(-1)!, ticks };
}

/** Removes float noise from a multiple of `step` (0.30000000000000004 -> 0.3). */
function round(v: number, step: number): number {
  const digits = Math.max(0, -Math.floor(Math.log10(step)) + 2);
  return Number(v.toFixed(Math.min(20, digits)));
}

/** A log axis over positive [lo, hi]: 1-2-5 ticks per decade (every digit when the range is under a decade), widened to the outer ones. */
export function logAxis(lo: number, hi: number): Axis {
  lo = Math.max(lo, 1e-12);
  hi = Math.max(hi, lo * 1.0001);
  const decades = Math.log10(hi) - Math.log10(lo);
  const mantissas = decades < 1 ? [1, 2, 3, 4, 5, 6, 7, 8, 9] : decades < 3 ? [1, 2, 5] : [1];
  const candidates: number[] = [];
  for (let p = Math.floor(Math.log10(lo)) - 1; p <= Math.ceil(Math.log10(hi)); p++) for (const m of mantissas) candidates.push(Number((m * 10 ** p).toPrecision(6)));
  const below = candidates.filter((v) => v <= lo * (1 + 1e-9)).at(-1) ?? candidates[0]!;
  const above = candidates.find((v) => v >= hi * (1 - 1e-9)) ?? candidates.at(-1)!;
  return { lo: below, hi: above, ticks: candidates.filter((v) => v >= below && v <= above) };
}

/** A tick label: plain digits for ordinary magnitudes, short exponent form for tiny or huge ones (3e-4, 2.5e+4). */
export function tickLabel(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential().replace(/\.?0+e/, 'e');
  return String(Number(v.toPrecision(6)));
}

/** TensorBoard's smoothing: an exponential moving average with weight `w`, debiased so the start is not pulled to 0. */
export function smooth(values: readonly number[], w = 0.6): number[] {
  let ema = 0, weight = 0;
  return values.map((v) => {
    ema = w * ema + (1 - w) * v;
    weight = w * weight + (1 - w);
    return ema / weight;
  });
}
