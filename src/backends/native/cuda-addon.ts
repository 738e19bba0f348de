// Finds and loads the CUDA addon (native/cuda/build/alpaca_cuda.node, built by scripts/build-cuda.mjs when
// nvcc is present), starts the device, and types its exports. Not the Backend (see cuda.ts).

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Dtype codes the addon uses. */
export const DTYPE_CODE = { f32: 0, bf16: 1, f16: 2, i32: 3 } as const;

/** Precision codes the addon uses (native/cuda/common.cuh). */
export const PRECISION_CODE = { f32: 0, bf16: 1 } as const;

/** A device address (exact as a double below 2^53); 0 stands for a null tensor. */
type P = number;
type N = number;

export interface CudaMemoryStats {
  reserved: number; // bytes held by the addon: arena slabs, scratch, cuBLASLt workspace
  peak: number; // the most reserved since the last resetPeak()
  deviceFree: number;
  deviceTotal: number;
}

export interface CudaAddon {
  /** '' once the device and cuBLASLt are ready, else why the backend is unavailable. */
  init(): string;
  deviceName(): string;
  alloc(arena: N, bytes: N): P;
  free(p: P): void;
  freeArena(arena: N): void;
  memoryStats(): CudaMemoryStats;
  resetPeak(): void;
  sync(): void;
  upload(p: P, dtype: N, data: Float32Array | Uint16Array | Int32Array): void;
  download(p: P, dtype: N, n: N): Float32Array | Int32Array;

  fill(p: P, dtype: N, n: N, value: N): void;
  copy(dst: P, dstDtype: N, src: P, srcDtype: N, n: N): void;
  add(out: P, a: P, b: P, n: N): void;
  axpy(dst: P, src: P, s: N, n: N): void;
  scale(t: P, s: N, n: N): void;
  copyTime(dst: P, src: P, elemBytes: N, B: N, W: N, Tdst: N, dstT0: N, Tsrc: N, srcT0: N, count: N): void;
  dropout(out: P, inp: P, n: N, p: N, seed: N): void;
  scaleColumns(out: P, inp: P, scale: P, bias: P, biasDtype: N, N: N, OC: N): void;
  columnDot(out: P, a: P, b: P, scale: P, N: N, OC: N): void;
  embeddingForward(out: P, ids: P, table: P, tableDtype: N, V: N, N: N, C: N): void;
  embeddingBackward(dtable: P, dout: P, ids: P, V: N, N: N, C: N): void;
  matmulForward(out: P, inp: P, w: P, wDtype: N, bias: P, biasDtype: N, N: N, C: N, OC: N, precision: N): void;
  matmulBackward(dinp: P, dweight: P, dbias: P, dout: P, inp: P, w: P, wDtype: N, N: N, C: N, OC: N, precision: N): void;
  rmsnormForward(out: P, rstd: P, inp: P, w: P, wDtype: N, N: N, C: N, eps: N): void;
  rmsnormBackward(dinp: P, dweight: P, dout: P, inp: P, w: P, wDtype: N, rstd: P, N: N, C: N): void;
  rope(x: P, cos: P, sin: P, B: N, T: N, H: N, HD: N, inverse: boolean): void;
  attentionForward(out: P, lse: P, q: P, k: P, v: P, mask: P, segments: P, B: N, Tq: N, Tk: N, Tkv: N, NH: N, NKV: N, HD: N, precision: N): void;
  attentionBackward(
    dq: P, dk: P, dv: P, dout: P, out: P, lse: P, q: P, k: P, v: P, mask: P, segments: P, B: N, T: N, NH: N, NKV: N, HD: N, precision: N,
  ): void;
  swigluForward(out: P, gate: P, up: P, n: N): void;
  swigluBackward(dgate: P, dup: P, dout: P, gate: P, up: P, n: N): void;
  crossEntropy(losses: P, dlogits: P, logits: P, targets: P, N: N, V: N, gradScale: N): void;
  sumSquares(out: P, t: P, n: N): void;
  adamw(param: P, grad: P, m: P, v: P, n: N, lr: N, beta1: N, beta2: N, eps: N, weightDecay: N, stepSize: N, bc2Sqrt: N): void;

  /** '' once libnccl.so.2 is loaded (dlopen, at first use), else why it cannot be. */
  ncclLoad(): string;
  /** NCCL's 128-byte unique id; throws naming libnccl.so.2 when it cannot be loaded. */
  ncclUniqueId(): Uint8Array;
  /** Joins the communicator of nranks made from id (every rank the same 128 bytes); once per process. */
  ncclInit(id: Uint8Array, nranks: N, rank: N): void;
  /** In place, float32, on the addon's stream: n floats at p become their sum over the ranks. */
  ncclAllReduceSum(p: P, n: N): void;
}

export const ADDON_PATH = fileURLToPath(new URL('../../../native/cuda/build/alpaca_cuda.node', import.meta.url));

let cached: CudaAddon | { unavailable: string } | null = null;

/** Loads the addon and starts the device once; says why when either cannot be done. */
export function loadCudaAddon(): CudaAddon | { unavailable: string } {
  if (cached) return cached;
  if (!existsSync(ADDON_PATH)) {
    cached = { unavailable: 'the CUDA addon is not built (npm run build:cuda builds it where nvcc is installed)' };
    return cached;
  }
  try {
    const addon = createRequire(import.meta.url)(ADDON_PATH) as CudaAddon;
    const reason = addon.init();
    cached = reason ? { unavailable: reason } : addon;
  } catch (err) {
    cached = { unavailable: `loading ${ADDON_PATH} failed: ${err instanceof Error ? err.message : String(err)}` };
  }
  return cached;
}
