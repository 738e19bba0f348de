// bitsandbytes' code tables as float32: the 4-bit NF4 and FP4 values in bit-pattern order (normalised to
// [-1, 1]), and the 256-value dynamic map that double quantization codes absmax with. Tables only, no quantizing.

const f = Math.fround;

/** NF4: quantiles of N(0, 1), code 0 = -1 … code 15 = 1 (bitsandbytes' get_4bit_type('nf4')). */
export const NF4_CODE: Float32Array = Float32Array.of(
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
  -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
);

/** FP4 (1 sign, 2 exponent, 1 mantissa bits) divided by its largest value 12; codes 0 and 8 are both +0. */
export const FP4_CODE: Float32Array = Float32Array.from(
  [0, 0.0625, 8, 12, 4, 6, 2, 3, 0, -0.0625, -8, -12, -4, -6, -2, -3],
  (v) => f(v / 12),
);

export function code4bit(type: 'nf4' | 'fp4'): Float32Array {
  return type === 'nf4' ? NF4_CODE : FP4_CODE;
}

/**
 * bitsandbytes' create_dynamic_map(): signed, 7 exponent bits, sorted ascending. For exponent i (0..6) the
 * midpoints of linspace(0.1, 1, 2^i + 1) times 10^(i-6), both signs, then 0 and 1.
 */
export function dynamicMap(): Float32Array {
  const values = [0, 1];
  for (let i = 0; i < 7; i++) {
    const bounds = torchLinspace(f(0.1), 1, 2 ** i + 1);
    const scale = f(10 ** (i - 6));
    for (let k = 0; k + 1 < bounds.length; k++) {
      const v = f(scale * f(f(bounds[k]! + bounds[k + 1]!) / 2));
      values.push(v, -v);
    }
  }
  return Float32Array.from(values.sort((a, b) => a - b));
}

/**
 * torch.linspace in float32 as x86 CPUs run it (AVX2): 16 values at a time as two 8-lane aranges, each from a
 * base computed with a fused multiply-add, the rest one by one. Plain `start + i * step` differs in the last bit
 * for 44 of the 256 map values. Checkpoints carry their own map; this one is for quantizing.
 */
function torchLinspace(start: number, end: number, steps: number): number[] {
  const LANES = 8;
  const step = f(f(end - start) / (steps - 1));
  const half = Math.floor(steps / 2);
  const at = (i: number) => (i < half ? f(start + step * i) : f(end - step * (steps - i - 1))); // fused: one rounding
  const out: number[] = [];
  const vectorEnd = steps - (steps % (2 * LANES));
  let i = 0;
  for (; i < vectorEnd; i += LANES) {
    const base = at(i);
    for (let k = 0; k < LANES; k++) out.push(f(base + f(k * step)));
  }
  for (; i < steps; i++) out.push(at(i));
  return out;
}
