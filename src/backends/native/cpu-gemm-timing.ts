// Times the addon's GEMM kernels for cpu-gemm-choice.ts on a few representative linear-layer shapes, and applies
// the choice to the addon. Each timing is a few milliseconds; the whole measurement about a second or less.
// Not the choosing logic (cpu-gemm-choice.ts) and not a benchmark (bench/).

import { cpus } from 'node:os';
import { DTYPE_CODE, type CpuAddon, type Handle } from './cpu-addon.ts';
import {
  chooseGemm, GEMM_ENTRIES, gemmCacheFile, parseGemmTable, type ChosenGemm, type GemmChoice, type GemmClass, type GemmDtype, type GemmTimer,
} from './cpu-gemm-choice.ts';

/** One timed linear layer: rows N, input width C, output width OC; with `backward`, dinp too (and dweight for LoRA's). */
interface Shape {
  N: number;
  C: number;
  OC: number;
  backward: boolean;
}

// large: a training micro-batch slice through a frozen weight (forward and dinp); skinny: LoRA's rank-8 down-projection
// for f32 (its weight is f32: forward, dinp and dweight), a 16-row prompt through a frozen 16-bit weight otherwise.
const SHAPES: Record<GemmClass, (dtype: GemmDtype) => Shape> = {
  large: () => ({ N: 256, C: 768, OC: 768, backward: true }),
  skinny: (dtype) => (dtype === 'f32' ? { N: 512, C: 768, OC: 8, backward: true } : { N: 16, C: 768, OC: 2048, backward: false }),
};

/** A timer over the addon: each entry's tensors are made at its first timing, each kernel warmed up once per entry. */
function addonTimer(addon: CpuAddon): { time: GemmTimer; free: () => void } {
  const made: Handle[] = [];
  const calls = new Map<string, () => void>();
  const warm = new Set<string>();
  const alloc = (n: number, code: number, value: number) => {
    const t = addon.alloc(n, code);
    addon.fill(t, value);
    made.push(t);
    return t;
  };
  const callFor = (dtype: GemmDtype, shapeClass: GemmClass) => {
    const { N, C, OC, backward } = SHAPES[shapeClass](dtype);
    const inp = alloc(N * C, DTYPE_CODE.f32, 0.5), w = alloc(OC * C, DTYPE_CODE[dtype], 0.25), out = alloc(N * OC, DTYPE_CODE.f32, 0);
    const dinp = alloc(N * C, DTYPE_CODE.f32, 0), dw = shapeClass === 'skinny' && dtype === 'f32' ? alloc(OC * C, DTYPE_CODE.f32, 0) : null;
    return () => {
      addon.matmulForward(out, inp, w, null, N, C, OC);
      if (backward) addon.matmulBackward(dinp, dw, null, out, inp, w, N, C, OC);
    };
  };
  const time: GemmTimer = (kernel, dtype, shapeClass) => {
    const entry = `${dtype}/${shapeClass}`;
    let call = calls.get(entry);
    if (!call) calls.set(entry, (call = callFor(dtype, shapeClass)));
    addon.setGemm(kernel, dtype, shapeClass);
    if (!warm.has(`${kernel} ${entry}`)) {
      call(); // packing buffers, page faults
      warm.add(`${kernel} ${entry}`);
    }
    const t0 = performance.now();
    call();
    return (performance.now() - t0) / 1000;
  };
  return { time, free: () => made.forEach((t) => addon.free(t)) };
}

/** The key a measured choice is cached under: what decides which kernel is faster. */
export function gemmMachineKey(addon: CpuAddon): string {
  const i = addon.info();
  return [cpus()[0]?.model ?? 'unknown CPU', `${i.threads} threads`, `own ${i.gemmIsa}`, i.blasConfig ?? 'no OpenBLAS', `addon built ${i.build}`].join(' | ');
}

/** Sets each entry's kernel in the addon. */
export function setGemmChoice(addon: CpuAddon, choice: GemmChoice): void {
  for (const entry of GEMM_ENTRIES) {
    const [dtype, shapeClass] = entry.split('/') as [GemmDtype, GemmClass];
    addon.setGemm(choice[entry], dtype, shapeClass);
  }
}

/** The kernels the addon uses now. */
export const gemmChoiceOf = (addon: CpuAddon): GemmChoice => parseGemmTable(addon.info().gemmTable);

/** Chooses each entry's kernel (cached, else measured) and sets it in the addon. */
export function applyMeasuredGemm(addon: CpuAddon, env: NodeJS.ProcessEnv = process.env): ChosenGemm {
  const timer = addonTimer(addon);
  try {
    const chosen = chooseGemm({ key: gemmMachineKey(addon), file: gemmCacheFile(env), time: timer.time, rounds: 5 });
    setGemmChoice(addon, chosen.choice);
    return chosen;
  } finally {
    timer.free();
  }
}
