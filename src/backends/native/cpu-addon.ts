// Finds and loads the native CPU addon (native/cpu/build/Release/alpaca_cpu.node, built by `npm install`)
// and types its exports. Not the Backend (see cpu.ts) and not the build (see native/cpu/build.mjs).

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** An addon tensor handle: an opaque napi external. */
export type Handle = object;

/** Dtype codes the addon uses. */
export const DTYPE_CODE = { f32: 0, bf16: 1, f16: 2, i32: 3 } as const;

export type QuantIsa = 'avx512' | 'avx2' | 'generic';

type H = Handle;
type N = number;

export interface CpuAddon {
  /** weight: a model weight (small ones are packed into shared huge-page mappings, native/cpu/src/binding/tensor-memory.h) */
  alloc(n: N, dtype: N, weight?: boolean): H;
  view(t: H, offset: N, n: N): H;
  free(t: H): void;
  upload(t: H, data: Float32Array | Uint16Array | Int32Array): void;
  /** into: written and returned instead of a new array (a float tensor's size) */
  download(t: H, into?: Float32Array): Float32Array | Int32Array;
  /**
   * A 4-bit weight (engine/quantized.ts); absmax null means double-quantized (codes, nestedAbsmax, nestedMap given);
   * dtype: the DTYPE_CODE its dequantized values are rounded to.
   */
  upload4bit(
    type: 'nf4' | 'fp4', OC: N, C: N, blocksize: N, packed: Uint8Array, absmax: Float32Array | null,
    absmaxCodes: Uint8Array | null, nestedAbsmax: Float32Array | null, nestedMap: Float32Array | null, nestedBlocksize: N, offset: N, dtype: N,
  ): H;
  uploadInt8(OC: N, C: N, weight: Int8Array, scb: Float32Array, threshold: N): H;
  /** A bf16 (OC, C) weight's copy in the packed layout of kernels/matvec-packed.cpp (only where info().bf16Dot). */
  packBf16(weight: H, OC: N, C: N): H;
  /**
   * gemm: the kernel every GEMM uses, or 'mixed'; gemmTable: per weight dtype, large/skinny ("f32 own/openblas, ...");
   * gemmIsa: the own GEMM's SIMD level; isa: the other kernels'; matvecIsa: the dense decode matvec's; quantIsa: the
   * quantized weights' kernels';
   * build: when the addon was compiled; computeDtype: what bf16 weights' products compute in; bf16Dot: whether the CPU
   * has AVX512_BF16; blasCore: OpenBLAS's kernel family; blasConfig: its build line.
   */
  info(): {
    threads: number; gemm: 'openblas' | 'own' | 'mixed'; gemmTable: string; gemmIsa: string; isa: string; matvecIsa: QuantIsa; quantIsa: QuantIsa;
    build: string; computeDtype: 'f32' | 'bf16'; bf16Dot: boolean; blasCore?: string; blasConfig?: string;
  };
  setThreads(n: N): void;
  /** The kernel for one weight dtype and shape class, or for all of them; returns the kernel that entry now uses. */
  setGemm(name: 'openblas' | 'own', dtype?: 'f32' | 'bf16' | 'f16', shapeClass?: 'large' | 'skinny'): 'openblas' | 'own';
  /** bf16: linear layers with bf16 weights multiply in bf16 and sum in float32; throws without AVX512_BF16. */
  setComputeDtype(dtype: 'f32' | 'bf16'): 'f32' | 'bf16';
  /** Caps the dense matvec's SIMD level (tests run each copy); returns the level now in use. */
  setMatvecIsa(name: QuantIsa): QuantIsa;
  /** Caps the quantized kernels' SIMD level (tests run each copy); returns the level now in use. */
  setQuantIsa(name: QuantIsa): QuantIsa;
  /** Host 4-bit blocks (formats/bnb-4bit.ts' quantizeBlocks): packed (ceil(n / 2)) and absmax (ceil(n / blocksize)) filled. */
  quantize4bit(weight: Float32Array, blocksize: N, bounds: Float32Array, order: Uint8Array, packed: Uint8Array, absmax: Float32Array): void;
  /** Host int8 rows (formats/bnb-int8.ts' quantizeRows): q (OC * C) and scb (OC) filled. */
  quantizeInt8Rows(weight: Float32Array, OC: N, C: N, q: Int8Array, scb: Float32Array): void;

  fill(t: H, value: N): void;
  copy(dst: H, src: H): void;
  add(out: H, a: H, b: H): void;
  axpy(dst: H, src: H, s: N): void;
  scale(t: H, s: N): void;
  copyTime(dst: H, src: H, B: N, W: N, Tdst: N, dstT0: N, Tsrc: N, srcT0: N, count: N): void;
  dropout(out: H, inp: H, p: N, seed: N): void;
  scaleColumns(out: H, inp: H, scale: H, bias: H | null, N: N, OC: N): void;
  columnDot(out: H, a: H, b: H, scale: H, N: N, OC: N): void;
  embeddingForward(out: H, ids: H, table: H, N: N, C: N): void;
  embeddingBackward(dtable: H, dout: H, ids: H, N: N, C: N): void;
  matmulForward(out: H, inp: H, weight: H, bias: H | null, N: N, C: N, OC: N): void;
  matmulBackward(dinp: H | null, dweight: H | null, dbias: H | null, dout: H, inp: H, weight: H, N: N, C: N, OC: N): void;
  rmsnormForward(out: H, rstd: H, inp: H, weight: H, N: N, C: N, eps: N): void;
  rmsnormBackward(dinp: H, dweight: H | null, dout: H, inp: H, weight: H, rstd: H, N: N, C: N): void;
  rope(x: H, cos: H, sin: H, B: N, T: N, H: N, HD: N, inverse: boolean): void;
  attentionForward(out: H, lse: H, q: H, k: H, v: H, mask: H | null, segments: H | null, B: N, Tq: N, Tk: N, Tkv: N, NH: N, NKV: N, HD: N): void;
  attentionPaged(
    out: H, q: H, k: H, v: H, kCache: H[], vCache: H[], rows: Int32Array, blocks: Int32Array,
    N: N, NH: N, NKV: N, HD: N, blockTokens: N, blocksPerChunk: N, R: N, maxBlocks: N,
  ): void;
  attentionBackward(
    dq: H, dk: H, dv: H, dout: H, out: H, lse: H, q: H, k: H, v: H, mask: H | null, segments: H | null, B: N, T: N, NH: N, NKV: N, HD: N,
  ): void;
  swigluForward(out: H, gate: H, up: H, n: N): void;
  swigluBackward(dgate: H, dup: H, dout: H, gate: H, up: H, n: N): void;
  crossEntropy(losses: H, dlogits: H | null, logits: H, targets: H, N: N, V: N, gradScale: N): void;
  argmaxRows(out: H, x: H, R: N, V: N): void;
  sumSquares(out: H, t: H): void;
  adamw(param: H, grad: H, m: H, v: H, lr: N, beta1: N, beta2: N, eps: N, weightDecay: N, step: N): void;
}

export const ADDON_PATH = fileURLToPath(new URL('../../../native/cpu/build/Release/alpaca_cpu.node', import.meta.url));

let cached: CpuAddon | { unavailable: string } | null = null;

/** Loads the addon once; says why when it cannot. */
export function loadCpuAddon(): CpuAddon | { unavailable: string } {
  if (cached) return cached;
  if (!existsSync(ADDON_PATH)) {
    cached = { unavailable: 'the native addon is not built (npm install builds it and needs a C++ compiler; see its output)' };
    return cached;
  }
  // OpenBLAS reads this as it loads with the addon: its idle workers otherwise spin (sched_yield) for 2^28 cycles,
  // ~0.1 s, after each GEMM, taking a core from the addon's own threads in the ops between GEMMs (measured on 2
  // cores: attention in a training step 330 -> 220 ms). 2^16 cycles is ~20 us. A user's own setting is kept.
  process.env.OPENBLAS_THREAD_TIMEOUT ??= '16';
  try {
    cached = createRequire(import.meta.url)(ADDON_PATH) as CpuAddon;
  } catch (err) {
    cached = { unavailable: `loading ${ADDON_PATH} failed: ${err instanceof Error ? err.message : String(err)}` };
  }
  return cached;
}
