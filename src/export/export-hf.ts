// export-hf: merge a LoRA adapter into its base and write a Hugging Face checkpoint folder (sharded
// safetensors or torch.save .bin with an index, config.json, generation_config.json, tokenizer files),
// then check it as the seed's script does. The library form of `alpaca-lora export-hf`.

import type { Backend } from '../engine/backend.ts';
import type { BnbConfig } from '../formats/bnb-config.ts';
import { openCheckpoint } from '../formats/hf-checkpoint.ts';
import type { PendingTensor } from '../formats/output-tensor.ts';
import { writeShardedSafetensors } from '../formats/safetensors-write.ts';
import { writeShardedTorch } from '../formats/torch-write.ts';
import { mergeNote, openMerged, type MergedCheckpoint } from './merged-checkpoint.ts';
import { copyPresent, TOKENIZER_FILES, writeConfig } from './model-files.ts';
import { DTYPE_NAMES, isFloatDType, type FloatDType } from './output-dtype.ts';
import { checkNotInside, checkOutputFolder, writeFolder } from './output-folder.ts';
import { checkMergedLogits, checkWrittenWeights, type LogitCheck } from './verify.ts';
import { resolveModelInputs } from '../hub/resolve.ts';

export interface ExportHfOptions {
  baseModel: string;
  loraWeights: string;
  outputDir: string;
  /** Bytes per shard (the seed's 400MB by default). */
  maxShardBytes?: number;
  saveFormat?: 'safetensors' | 'bin';
  /** Cast every weight to this; default: each keeps the base's dtype. */
  dtype?: FloatDType | null;
  overwrite?: boolean;
  /** Read the export back and compare probe logits (default true). */
  verify?: boolean;
  /** Computes the probe logits (its arenas are freed after: see checkMergedLogits); required when verify is on. */
  backend?: Backend;
  /** Quantize the base's decoder linears as on load, then merge into their dequantized values (a base stored quantized is used as it is). */
  quantize?: BnbConfig | null;
  /** Where the one sentence about a quantized base goes (default: stderr). */
  log?: (line: string) => void;
}

export interface ExportHfResult {
  files: string[];
  adapted: number; // weights the adapter changed
  logits: LogitCheck | null;
}

export const DEFAULT_MAX_SHARD_BYTES = 400e6;

export async function exportHf(o: ExportHfOptions): Promise<ExportHfResult> {
  checkOutputFolder(o.outputDir, o.overwrite ?? false, '--output_dir');
  checkNotInside(o.outputDir, o.baseModel, '--output_dir', '--base_model');
  checkNotInside(o.outputDir, o.loraWeights, '--output_dir', '--lora_weights');
  const verify = o.verify ?? true;
  if (verify && !o.backend) throw new Error('exportHf: verify needs a backend for the probe logits');
  o = await resolveModelInputs(o); // Hub ids: fetched into the HF cache
  const merged = await openMerged(o.baseModel, { loraWeights: o.loraWeights, quantize: o.quantize });
  try {
    const note = mergeNote(merged);
    if (note) (o.log ?? console.error)(note);
    return await writeFolder(o.outputDir, o.overwrite ?? false, '--output_dir', async (dir) => {
      const entries = merged.names.map((name) => [name, mergedTensor(merged, name, o.dtype ?? null)] as const);
      const maxShard = o.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
      const files = o.saveFormat === 'bin'
        ? await writeShardedTorch(dir, entries, maxShard)
        : await writeShardedSafetensors(dir, entries, maxShard);
      await writeConfig(o.baseModel, dir, o.dtype ? DTYPE_NAMES[o.dtype] : null, merged.config.vocabSize);
      files.push('config.json', ...(await copyPresent(o.baseModel, dir, ['generation_config.json'])), ...(await copyPresent(merged.tokenizerDir, dir, TOKENIZER_FILES)));
      let logits: LogitCheck | null = null;
      if (verify) {
        const written = await openCheckpoint(dir);
        try {
          checkWrittenWeights(merged, written);
        } finally {
          written.close();
        }
        const be = o.backend!;
        logits = await checkMergedLogits(be, o.baseModel, o.loraWeights, dir, o.dtype ?? probeDType(merged), { quantize: o.quantize, dequantize: true });
      }
      return { files, adapted: merged.lora?.pairs.size ?? 0, logits };
    });
  } finally {
    merged.close();
  }
}

/** A weight produced only when the writer reaches it: base + delta, stored as `dtype` or the base's own. */
export function mergedTensor(merged: MergedCheckpoint, name: string, dtype: FloatDType | null): PendingTensor {
  const info = merged.info(name);
  const target = dtype ?? info.dtype;
  return { dtype: target, shape: info.shape, load: () => merged.read(name, target).data };
}

/** The dtype the probe's tolerance is set by: the coarsest one among the adapted weights. */
function probeDType(merged: MergedCheckpoint): FloatDType {
  const dtypes = merged.names.filter((n) => merged.isAdapted(n)).map((n) => merged.info(n).dtype).filter(isFloatDType);
  return dtypes.includes('BF16') ? 'BF16' : dtypes.includes('F16') ? 'F16' : 'F32';
}
