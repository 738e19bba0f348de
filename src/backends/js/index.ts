// The js reference backend: every op of the Backend interface in plain TypeScript, synchronous.
// It is the spec the native backends are tested against; it is not meant to be fast.

import type { Backend } from '../../engine/backend.ts';
import { isQuantDType, type DType } from '../../engine/dtype.ts';
import type { QuantizedWeight } from '../../engine/quantized.ts';
import { numel, shapeString, type Arena, type Tensor } from '../../engine/tensor.ts';
import { attentionBackward, attentionForward } from './attention.ts';
import { columnDot, scaleColumns } from './columns.ts';
import { add, axpy, copyTime, dropout, fill, scale } from './elementwise.ts';
import { embeddingBackward, embeddingForward, rmsnormBackward, rmsnormForward, rope, swigluBackward, swigluForward } from './layers.ts';
import { adamw, crossEntropy, sumSquares } from './loss-optim.ts';
import { matmulBackward, matmulForward } from './matmul.ts';
import { data, denseDType, makeTensor, readF32, writeF32 } from './memory.ts';
import { dequantizeAll, makeQuantTensor, quantMatmulBackwardInput, quantMatmulForward } from './quant.ts';

export class JsBackend implements Backend {
  readonly name = 'js' as const;
  private readonly arenas = new Map<Arena, Set<Tensor>>();

  alloc(shape: readonly number[], dtype: DType, arena: Arena): Tensor {
    return this.track(makeTensor(shape, dtype, arena));
  }

  uploadQuantized(q: QuantizedWeight, arena: Arena): Tensor {
    return this.track(makeQuantTensor(q, arena));
  }

  private track(t: Tensor): Tensor {
    let set = this.arenas.get(t.arena);
    if (!set) this.arenas.set(t.arena, (set = new Set()));
    set.add(t);
    return t;
  }

  upload(t: Tensor, values: Float32Array | Uint16Array | Int32Array): void {
    denseDType(t);
    if (values.length !== t.size) throw new Error(`upload: ${values.length} values for a tensor of ${t.size} ${shapeString(t.shape)}`);
    if (values instanceof Float32Array) {
      if (t.dtype === 'i32') throw new Error('upload: float values into an i32 tensor');
      writeF32(t, values);
    } else if (values instanceof Uint16Array) {
      if (t.dtype !== 'bf16' && t.dtype !== 'f16') throw new Error(`upload: 16-bit values into a ${t.dtype} tensor`);
      (data(t) as Uint16Array).set(values);
    } else {
      if (t.dtype !== 'i32') throw new Error(`upload: int32 values into a ${t.dtype} tensor`);
      (data(t) as Int32Array).set(values);
    }
  }

  async download(t: Tensor): Promise<Float32Array | Int32Array> {
    if (isQuantDType(t.dtype)) return dequantizeAll(t);
    if (t.dtype === 'i32') return (data(t) as Int32Array).slice();
    return readF32(t, { buf: new Float32Array(t.size) }).slice();
  }

  view(t: Tensor, offset: number, shape: readonly number[]): Tensor {
    const n = numel(shape);
    if (offset < 0 || offset + n > t.size) throw new Error(`view of ${n} at ${offset} past the end of ${shapeString(t.shape)}`);
    return makeTensor(shape, denseDType(t), t.arena, data(t).subarray(offset, offset + n));
  }

  free(t: Tensor): void {
    this.arenas.get(t.arena)?.delete(t);
  }

  freeArena(arena: Arena): void {
    this.arenas.delete(arena);
  }

  async sync(): Promise<void> {}

  fill = fill;
  add = add;
  axpy = axpy;
  scale = scale;
  copyTime = copyTime;
  dropout = dropout;
  scaleColumns = scaleColumns;
  columnDot = columnDot;

  copy(dst: Tensor, src: Tensor): void {
    if (dst.size !== src.size) throw new Error(`copy: ${src.size} elements into ${dst.size}`);
    if (dst.dtype === src.dtype) (data(dst) as Float32Array).set(data(src) as Float32Array);
    else writeF32(dst, readF32(src, { buf: new Float32Array(src.size) }));
  }

  embeddingForward = embeddingForward;
  embeddingBackward = embeddingBackward;
  matmulForward(out: Tensor, inp: Tensor, weight: Tensor, bias: Tensor | null, N: number, C: number, OC: number): void {
    if (isQuantDType(weight.dtype)) quantMatmulForward(out, inp, weight, bias, N, C, OC);
    else matmulForward(out, inp, weight, bias, N, C, OC);
  }

  matmulBackward(
    dinp: Tensor | null, dweight: Tensor | null, dbias: Tensor | null,
    dout: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, OC: number,
  ): void {
    if (!isQuantDType(weight.dtype)) return matmulBackward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    if (dweight) throw new Error(frozenWeight(weight));
    if (dinp) quantMatmulBackwardInput(dinp, dout, weight, N, C, OC);
    if (dbias) matmulBackward(null, null, dbias, dout, inp, weight, N, C, OC);
  }
  rmsnormForward = rmsnormForward;
  rmsnormBackward = rmsnormBackward;
  rope = rope;
  attentionForward = attentionForward;
  attentionBackward = attentionBackward;
  swigluForward = swigluForward;
  swigluBackward = swigluBackward;
  crossEntropy = crossEntropy;
  sumSquares = sumSquares;
  adamw = adamw;
}

/** The js backend's error for a gradient asked of a quantized weight. */
export function frozenWeight(weight: Tensor): string {
  return `matmulBackward: the ${weight.dtype} weight ${shapeString(weight.shape)} is quantized and frozen, so it has no dweight: ` +
    'full fine-tuning needs 16/32-bit base weights (load the base model without quantization, or train LoRA adapters on it)';
}
