// bitsandbytes' dynamic map as float32: the 256 values double quantization codes absmax with (the 4-bit NF4 and
// FP4 tables are the engine's, engine/quantized.ts). A table only, no quantizing.

const f = Math.fround;

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
