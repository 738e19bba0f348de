// export-gguf: the base (with a LoRA adapter merged in, if given) as a GGUF v3 model file for llama.cpp, its
// tokenizer embedded; or, with adapterOnly, the adapter alone as a GGUF LoRA file for `llama.cpp --lora`.
// Float outtypes are read back and compared with the merge. The library form of `alpaca-lora export-gguf`.

import { existsSync, statSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { LlamaConfig } from '../arch/llama-config.ts';
import { UserError } from '../errors.ts';
import type { BnbConfig } from '../formats/bnb-config.ts';
import { GgufFile } from '../formats/gguf.ts';
import { writeGguf } from '../formats/gguf-write.ts';
import { dequantize } from '../formats/gguf-quant.ts';
import { viewAs, type HostTensor } from '../formats/host-tensor.ts';
import { permuteRotaryRows, rotaryHeads } from '../formats/meta-checkpoint.ts';
import { renameWeight } from '../formats/weight-names.ts';
import { ggufLoraMetadata, ggufLoraTensors } from './gguf-lora.ts';
import { ggufArchitecture, ggufModelMetadata, ggufTensors, type OutType } from './gguf-model.ts';
import { ggufVocabMetadata } from './gguf-vocab.ts';
import { mergeNote, openMerged, type MergedCheckpoint } from './merged-checkpoint.ts';
import { checkWrittenWeights } from './verify.ts';
import { resolveModelInputs } from '../hub/resolve.ts';

export interface ExportGgufOptions {
  baseModel: string;
  /** Merged into the model; with adapterOnly, the adapter written. */
  loraWeights?: string;
  outfile: string;
  outtype?: OutType;
  adapterOnly?: boolean;
  overwrite?: boolean;
  /** Read a float export back and compare it with the merge (default true). */
  verify?: boolean;
  /** Quantize the base's decoder linears as on load, then merge into their dequantized values; q8_0/q4 types requantize those (a base stored quantized is used as it is). */
  quantize?: BnbConfig | null;
  /** Where the one sentence about a quantized base goes (default: stderr). */
  log?: (line: string) => void;
}

export interface ExportGgufResult {
  outfile: string;
  tensors: number;
  adapted: number;
  bytes: number;
}

export async function exportGguf(o: ExportGgufOptions): Promise<ExportGgufResult> {
  const outtype = o.outtype ?? 'f16';
  if (existsSync(o.outfile)) {
    if (statSync(o.outfile).isDirectory()) throw new UserError(`--outfile ${o.outfile} is a folder: pass the path of the .gguf file to write`);
    if (!o.overwrite) throw new UserError(`--outfile ${o.outfile} exists: pass a new path, or --overwrite to replace it`);
  }
  if (o.adapterOnly && !o.loraWeights) throw new UserError('--adapter_only needs --lora_weights: the adapter to write');
  if (o.adapterOnly && outtype !== 'f32' && outtype !== 'f16') throw new UserError(`--adapter_only writes f32 or f16 LoRA tensors, not ${outtype}`);
  o = await resolveModelInputs(o); // Hub ids: fetched into the HF cache
  const merged = await openMerged(o.baseModel, { loraWeights: o.loraWeights, quantize: o.quantize });
  if (o.adapterOnly && merged.lora?.config.modulesToSave.length) {
    merged.close();
    throw new UserError(`--lora_weights ${o.loraWeights} has modules_to_save (${merged.lora.config.modulesToSave.join(', ')}), which a GGUF LoRA adapter for llama.cpp cannot hold: export it merged into the base (drop --adapter_only)`);
  }
  if (o.adapterOnly && merged.lora?.config.useDora) {
    merged.close();
    throw new UserError(`--lora_weights ${o.loraWeights} is a DoRA adapter (use_dora), which a GGUF LoRA adapter for llama.cpp cannot represent: export it merged into the base (drop --adapter_only)`);
  }
  try {
    await mkdir(dirname(o.outfile), { recursive: true });
    const lora = merged.lora;
    if (o.adapterOnly) {
      const tensors = ggufLoraTensors(merged.config, lora!, outtype === 'f32' ? 'F32' : 'F16');
      await writeGguf(o.outfile, ggufLoraMetadata(merged.config, lora!, o.loraWeights!), tensors);
      return { outfile: o.outfile, tensors: tensors.size, adapted: lora!.pairs.size, bytes: statSync(o.outfile).size };
    }
    const note = mergeNote(merged);
    if (note) (o.log ?? console.error)(note);
    const metadata = new Map([...ggufModelMetadata(merged.config, o.baseModel, outtype), ...ggufVocabMetadata(merged.tokenizerDir, merged.config)]);
    const tensors = ggufTensors(merged, outtype);
    await writeGguf(o.outfile, metadata, tensors);
    if ((o.verify ?? true) && (outtype === 'f32' || outtype === 'f16' || outtype === 'bf16') && lora) {
      try {
        verifyGguf(merged, o.outfile);
      } catch (err) {
        await rm(o.outfile, { force: true }); // a file that fails its check is not left behind
        throw err;
      }
    }
    return { outfile: o.outfile, tensors: tensors.size, adapted: lora?.pairs.size ?? 0, bytes: statSync(o.outfile).size };
  } finally {
    merged.close();
  }
}

/** Reads every weight back (q/k rows returned to HF order) and checks it against the merge. */
function verifyGguf(merged: MergedCheckpoint, path: string): void {
  const file = GgufFile.open(path);
  try {
    checkWrittenWeights(merged, { read: (name) => readGgufAsHf(file, merged.config, name) });
  } finally {
    file.close();
  }
}

/** An HF-named weight from a GGUF model file of ours, q/k rows back in HF order; quantized types come back as F32. */
export function readGgufAsHf(file: GgufFile, config: LlamaConfig, hfName: string): HostTensor {
  const info = file.tensors.get(renameWeight(hfName, 'hf', 'gguf'));
  if (!info) throw new Error(`${file.path} has no tensor for ${hfName}`);
  const bytes = file.readBytes(info.name);
  const dtype = info.type === 'F16' || info.type === 'BF16' ? info.type : 'F32';
  let data = info.type === dtype ? (viewAs(dtype, bytes.buffer, bytes.byteOffset, bytes.byteLength / (dtype === 'F32' ? 4 : 2)) as Float32Array | Uint16Array) : dequantize(info.type as 'Q8_0' | 'Q4_0' | 'Q4_K', bytes);
  const heads = ggufArchitecture(config).permute ? rotaryHeads(config, hfName) : null;
  if (heads !== null) data = permuteRotaryRows(data, heads, config.headDim, info.shape[1] ?? 1, 'rotate-half');
  return { dtype, shape: info.shape, data };
}
