// The float32 sum and mean of a contiguous array in the order PyTorch's CPU kernel (cascade_sum, x86 AVX2:
// 8 lanes, 4 accumulators, 4 cascade levels) adds, so a mean bitsandbytes stores reproduces bit for bit.
// Serial only: torch splits arrays of 32768 values and more across threads, whose partial sums we do not mimic.

const f = Math.fround;
const LANES = 8;
const ILP = 4;
const LEVELS = 4;

/** torch.mean(a) for float32 `a`: the sum, then one division. */
export function torchMeanF32(a: Float32Array): number {
  return f(torchSumF32(a) / a.length);
}

export function torchSumF32(a: Float32Array): number {
  if (a.length < LANES) return rowSum(a, a.length, 1)[0]!;
  const vectors = Math.floor(a.length / LANES);
  const lanes = rowSum(a, vectors, LANES);
  let acc = 0;
  for (let i = vectors * LANES; i < a.length; i++) acc = f(acc + a[i]!);
  for (const v of lanes) acc = f(acc + v);
  return acc;
}

/** Items of `width` consecutive values: ILP interleaved partial sums, folded into the first. */
function rowSum(a: Float32Array, count: number, width: number): number[] {
  const rows = Math.floor(count / ILP);
  const partial = multiRowSum(a, width, rows);
  for (let i = rows * ILP; i < count; i++) addItem(partial[0]!, a, i, width);
  for (let k = 1; k < ILP; k++) addInto(partial[0]!, partial[k]!);
  return partial[0]!;
}

/** Sums `rows` rows of ILP items column by column, cascading every 2^levelPower rows into coarser accumulators. */
function multiRowSum(a: Float32Array, width: number, rows: number): number[][] {
  const levelPower = Math.max(4, Math.floor(ceilLog2(rows) / LEVELS));
  const levelStep = 2 ** levelPower;
  const acc = Array.from({ length: LEVELS }, () => Array.from({ length: ILP }, () => new Array<number>(width).fill(0)));
  let i = 0;
  while (i + levelStep <= rows) {
    for (let j = 0; j < levelStep; j++, i++) for (let k = 0; k < ILP; k++) addItem(acc[0]![k]!, a, i * ILP + k, width);
    for (let j = 1; j < LEVELS; j++) {
      for (let k = 0; k < ILP; k++) {
        addInto(acc[j]![k]!, acc[j - 1]![k]!);
        acc[j - 1]![k]!.fill(0);
      }
      if ((i & ((levelStep - 1) * 2 ** (j * levelPower))) !== 0) break;
    }
  }
  for (; i < rows; i++) for (let k = 0; k < ILP; k++) addItem(acc[0]![k]!, a, i * ILP + k, width);
  for (let j = 1; j < LEVELS; j++) for (let k = 0; k < ILP; k++) addInto(acc[0]![k]!, acc[j]![k]!);
  return acc[0]!;
}

function addItem(acc: number[], a: Float32Array, item: number, width: number): void {
  for (let l = 0; l < width; l++) acc[l] = f(acc[l]! + a[item * width + l]!);
}

function addInto(acc: number[], other: number[]): void {
  for (let l = 0; l < acc.length; l++) acc[l] = f(acc[l]! + other[l]!);
}

function ceilLog2(x: number): number {
  return x <= 1 ? 0 : 32 - Math.clz32(x - 1);
}
