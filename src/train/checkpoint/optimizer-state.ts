// AdamW's moments as named host tensors (`<peft key>.exp_avg`, `.exp_avg_sq`) for checkpoints, and back.
// Not the file format (checkpoint.ts) and not the update rule (optimizer.ts).

import type { Backend } from '../../engine/backend.ts';
import { UserError } from '../../errors.ts';
import { toFloat32, type HostTensor } from '../../formats/host-tensor.ts';
import type { AdamW } from '../optimizer.ts';

export async function optimizerTensors(be: Backend, opt: AdamW): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for (let i = 0; i < opt.params.length; i++) {
    const { name, param } = opt.params[i]!;
    const { m, v } = opt.moments[i]!;
    out.set(`${name}.exp_avg`, { dtype: 'F32', shape: [...param.shape], data: (await be.download(m)) as Float32Array });
    out.set(`${name}.exp_avg_sq`, { dtype: 'F32', shape: [...param.shape], data: (await be.download(v)) as Float32Array });
  }
  return out;
}

/** Uploads saved moments and the step count; every parameter's moments must be there with its shape. */
export function restoreOptimizer(be: Backend, opt: AdamW, tensors: ReadonlyMap<string, HostTensor>, step: number, source: string): void {
  opt.params.forEach(({ name, param }, i) => {
    const { m, v } = opt.moments[i]!;
    for (const [key, dst] of [[`${name}.exp_avg`, m], [`${name}.exp_avg_sq`, v]] as const) {
      const h = tensors.get(key);
      if (!h) throw new UserError(`${source} has no ${key}: the checkpoint is incomplete; resume from an earlier one`);
      if (h.shape.join() !== param.shape.join()) throw new UserError(`${source}: ${key} has shape [${h.shape}], the adapter needs [${param.shape}]`);
      be.upload(dst, toFloat32(h));
    }
  });
  opt.step = step;
}
