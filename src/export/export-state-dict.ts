// export-state-dict: merge a LoRA adapter into its base and write Meta's original layout: consolidated.00.pth
// (Meta names, q/k rows in Meta's interleaved rotary order) + params.json + tokenizer.model, as the seed's
// export_state_dict_checkpoint.py does but with params derived from config.json. The library form of the command.

import { join } from 'node:path';
import { UserError } from '../errors.ts';
import type { HostTensor } from '../formats/host-tensor.ts';
import { metaParams, permuteRotaryRows } from '../formats/meta-checkpoint.ts';
import type { PendingTensor } from '../formats/output-tensor.ts';
import { TorchFile } from '../formats/torch-pickle.ts';
import { writeTorchStateDict } from '../formats/torch-write.ts';
import { renameWeight } from '../formats/weight-names.ts';
import type { LlamaConfig } from '../model/llama-config.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { openMerged, type MergedCheckpoint } from './merged-checkpoint.ts';
import { copyPresent } from './model-files.ts';
import type { FloatDType } from './output-dtype.ts';
import { checkNotInside, checkOutputFolder, writeFolder } from './output-folder.ts';
import { checkWrittenWeights } from './verify.ts';

export interface ExportStateDictOptions {
  baseModel: string;
  loraWeights: string;
  outputDir: string;
  dtype?: FloatDType | null;
  overwrite?: boolean;
  /** Read consolidated.00.pth back, undo the permutation and compare with the merge (default true). */
  verify?: boolean;
}

export interface ExportStateDictResult {
  files: string[];
  adapted: number;
  params: Record<string, unknown>;
}

export const META_WEIGHTS = 'consolidated.00.pth';

export async function exportStateDict(o: ExportStateDictOptions): Promise<ExportStateDictResult> {
  checkOutputFolder(o.outputDir, o.overwrite ?? false, '--output_dir');
  checkNotInside(o.outputDir, o.baseModel, '--output_dir', '--base_model');
  checkNotInside(o.outputDir, o.loraWeights, '--output_dir', '--lora_weights');
  const merged = await openMerged(o.baseModel, { loraWeights: o.loraWeights });
  try {
    const params = metaParams(merged.config, join(o.baseModel, 'config.json'));
    return await writeFolder(o.outputDir, o.overwrite ?? false, '--output_dir', async (dir) => {
      await writeTorchStateDict(join(dir, META_WEIGHTS), metaEntries(merged, o.dtype ?? null));
      await writeFileAtomic(join(dir, 'params.json'), JSON.stringify(params, null, 2) + '\n');
      const files = [META_WEIGHTS, 'params.json', ...(await copyPresent(o.baseModel, dir, ['tokenizer.model']))];
      if (o.verify ?? true) {
        const written = TorchFile.open(join(dir, META_WEIGHTS));
        try {
          checkWrittenWeights(merged, { read: (name) => readMetaAsHf(written, merged.config, name) });
        } finally {
          written.close();
        }
      }
      return { files, adapted: merged.lora?.pairs.size ?? 0, params: { ...params } };
    });
  } finally {
    merged.close();
  }
}

/** The merged weights under Meta's names, q/k rows interleaved; a tied head is written out as output.weight. */
export function metaEntries(merged: MergedCheckpoint, dtype: FloatDType | null): [string, PendingTensor][] {
  const entries: [string, PendingTensor][] = merged.names.map((name) => [renameWeight(name, 'hf', 'meta'), metaTensor(merged, name, dtype)]);
  if (merged.config.tieWordEmbeddings) entries.push(['output.weight', metaTensor(merged, 'model.embed_tokens.weight', dtype)]);
  return entries;
}

function metaTensor(merged: MergedCheckpoint, name: string, dtype: FloatDType | null): PendingTensor {
  const info = merged.info(name);
  const target = dtype ?? info.dtype;
  const heads = rotaryHeads(merged.config, name);
  return {
    dtype: target,
    shape: info.shape,
    load: () => {
      const t = merged.read(name, target);
      if (heads === null) return t.data;
      return permuteRotaryRows(t.data as Float32Array | Uint16Array, heads, merged.config.headDim, info.shape[1] ?? 1, 'interleaved');
    },
  };
}

/** How many heads a q or k projection's rows hold; null for every other tensor. */
export function rotaryHeads(config: LlamaConfig, hfName: string): number | null {
  if (/\.self_attn\.q_proj\.(weight|bias)$/.test(hfName)) return config.numHeads;
  if (/\.self_attn\.k_proj\.(weight|bias)$/.test(hfName)) return config.numKvHeads;
  return null;
}

/** Reads an HF-named weight back from a Meta checkpoint, with q/k rows returned to rotate-half order. */
export function readMetaAsHf(file: TorchFile, config: LlamaConfig, hfName: string): HostTensor {
  const t = file.read(renameWeight(hfName, 'hf', 'meta'));
  const heads = rotaryHeads(config, hfName);
  if (heads === null) return t;
  if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') throw new UserError(`${file.path}: ${hfName} is ${t.dtype}, not a float tensor`);
  return { ...t, data: permuteRotaryRows(t.data as Float32Array | Uint16Array, heads, config.headDim, t.shape[1] ?? 1, 'rotate-half') };
}
