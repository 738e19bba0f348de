// Reading a fixture model's golden batch and comparing float arrays with stated tolerances.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import type { HostTensor } from '../../src/formats/host-tensor.ts';
import { toFloat32 } from '../../src/formats/host-tensor.ts';
import type { TokenBatch } from '../../src/model/batch.ts';
import { sharedPath } from './shared.ts';

export function fixtureDir(model: string): string {
  return sharedPath('fixtures', 'models', model);
}

export interface Golden {
  json: Record<string, any>;
  tensors: Map<string, HostTensor>;
  batch: TokenBatch;
}

export function readGolden(model: string): Golden {
  const dir = fixtureDir(model);
  const tensors = readSafetensors(`${dir}/golden.safetensors`);
  const ints = (name: string) => Int32Array.from(tensors.get(name)!.data as BigInt64Array, Number);
  const [B, T] = tensors.get('input_ids')!.shape as [number, number];
  return {
    json: JSON.parse(readFileSync(`${dir}/golden.json`, 'utf8')),
    tensors,
    batch: { B, T, inputIds: ints('input_ids'), attentionMask: tensors.has('attention_mask') ? ints('attention_mask') : null, labels: ints('labels') },
  };
}

export function goldenFloat(g: Golden, name: string): Float32Array {
  const t = g.tensors.get(name);
  assert.ok(t, `golden tensor ${name} is missing`);
  return toFloat32(t);
}

/**
 * Asserts |actual - expected| <= atol + rtol * |expected| elementwise, where `skip(i)` is true for
 * elements not compared. Reports the worst element.
 */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number, what: string, skip?: (i: number) => boolean): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = -1, worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    if (skip?.(i)) continue;
    const excess = Math.abs(actual[i]! - expected[i]!) - (atol + rtol * Math.abs(expected[i]!));
    if (!(excess <= worstExcess)) {
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
      worst = i;
    }
  }
  assert.ok(worst < 0, `${what}: element ${worst} is ${actual[worst]} but the reference has ${expected[worst]} (rtol ${rtol}, atol ${atol})`);
}

/** Largest absolute value: the scale a tensor's absolute tolerance is taken relative to. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}
