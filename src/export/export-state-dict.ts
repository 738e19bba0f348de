// export-state-dict: merge a LoRA adapter into its base and write Meta's original layout: consolidated.00.pth
// (Meta names, q/k rows in Meta's interleaved rotary order; or model-parallel consolidated.NN.pth files) +
// params.json + tokenizer.model, as the seed's export_state_dict_checkpoint.py does but with params derived
// from config.json. The library form of the command.

import { join } from 'node:path';
import type { LlamaConfig } from '../arch/llama-config.ts';
import { UserError } from '../errors.ts';
import { loadTokenizer } from '../tokenizer/load.ts';
import type { BnbConfig } from '../formats/bnb-config.ts';
import type { HostTensor } from '../formats/host-tensor.ts';
import { joinAlong, metaParams, metaSplitDim, permuteRotaryRows, rotaryHeads, sliceAlong } from '../formats/meta-checkpoint.ts';
import type { PendingTensor } from '../formats/output-tensor.ts';
import { TorchFile } from '../formats/torch-pickle.ts';
import { writeTorchStateDict } from '../formats/torch-write.ts';
import { renameWeight } from '../formats/weight-names.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { mergeNote, openMerged, type MergedCheckpoint } from './merged-checkpoint.ts';
import { copyPresent } from './model-files.ts';
import type { FloatDType } from './output-dtype.ts';
import { checkNotInside, checkOutputFolder, writeFolder } from './output-folder.ts';
import { checkWrittenWeights } from './verify.ts';
import { resolveModelInputs } from '../hub/resolve.ts';

export interface ExportStateDictOptions {
  baseModel: string;
  loraWeights: string;
  outputDir: string;
  dtype?: FloatDType | null;
  /** Model-parallel files, split as Meta's code splits them (default 1). */
  numShards?: number;
  overwrite?: boolean;
  /** Read the .pth files back, undo the permutation and compare with the merge (default true). */
  verify?: boolean;
  /** Quantize the base's decoder linears as on load, then merge into their dequantized values (a base stored quantized is used as it is). */
  quantize?: BnbConfig | null;
  /** Where the one sentence about a quantized base goes (default: stderr). */
  log?: (line: string) => void;
}

export interface ExportStateDictResult {
  files: string[];
  adapted: number;
  params: Record<string, unknown>;
}

/** consolidated.00.pth, consolidated.01.pth, ... */
export function metaShardName(i: number): string {
  return `consolidated.${String(i).padStart(2, '0')}.pth`;
}

export async function exportStateDict(o: ExportStateDictOptions): Promise<ExportStateDictResult> {
  checkOutputFolder(o.outputDir, o.overwrite ?? false, '--output_dir');
  checkNotInside(o.outputDir, o.baseModel, '--output_dir', '--base_model');
  checkNotInside(o.outputDir, o.loraWeights, '--output_dir', '--lora_weights');
  o = await resolveModelInputs(o); // Hub ids: fetched into the HF cache
  const merged = await openMerged(o.baseModel, { loraWeights: o.loraWeights, quantize: o.quantize });
  if (merged.tokenizerDir !== o.baseModel && loadTokenizer(merged.tokenizerDir).vocabSize > loadTokenizer(o.baseModel).vocabSize) {
    merged.close();
    throw new UserError(`--lora_weights ${o.loraWeights} holds its own tokenizer (tokens added in training), which Meta's consolidated format (tokenizer.model alone) cannot carry: use export-hf or export-gguf`);
  }
  try {
    const note = mergeNote(merged);
    if (note) (o.log ?? console.error)(note);
    const params = metaParams(merged.config, join(o.baseModel, 'config.json'));
    const shards = o.numShards ?? 1;
    checkShardable(merged.config, shards);
    return await writeFolder(o.outputDir, o.overwrite ?? false, '--output_dir', async (dir) => {
      const names = Array.from({ length: shards }, (_, i) => metaShardName(i));
      for (const [i, name] of names.entries()) await writeTorchStateDict(join(dir, name), metaEntries(merged, o.dtype ?? null, i, shards));
      await writeFileAtomic(join(dir, 'params.json'), JSON.stringify(params, null, 2) + '\n');
      const files = [...names, 'params.json', ...(await copyPresent(o.baseModel, dir, ['tokenizer.model']))];
      if (o.verify ?? true) {
        const written = names.map((name) => TorchFile.open(join(dir, name)));
        try {
          checkWrittenWeights(merged, { read: (name) => readMetaAsHf(written, merged.config, name) });
        } finally {
          written.forEach((f) => f.close());
        }
      }
      return { files, adapted: merged.lora?.pairs.size ?? 0, params: { ...params } };
    });
  } finally {
    merged.close();
  }
}

/** Every head (q and kv) must stay whole within one model-parallel file. */
function checkShardable(config: LlamaConfig, shards: number): void {
  if (!Number.isSafeInteger(shards) || shards < 1) throw new UserError(`--num_shards must be a positive integer, got ${shards}`);
  for (const [what, n] of [['num_key_value_heads', config.numKvHeads], ['hidden_size', config.hiddenSize], ['intermediate_size', config.intermediateSize], ['vocab_size', config.vocabSize]] as const) {
    if (n % shards) throw new UserError(`--num_shards ${shards} does not divide ${what} (${n}): pick a divisor of it`);
  }
}

/**
 * Part `shard` of `shards` of the merged weights under Meta's names, q/k rows interleaved, split as Meta's
 * model-parallel code splits them; a tied head is written out as output.weight.
 */
export function metaEntries(merged: MergedCheckpoint, dtype: FloatDType | null, shard = 0, shards = 1): [string, PendingTensor][] {
  const hfNames: [string, string][] = merged.names.map((name) => [renameWeight(name, 'hf', 'meta'), name]);
  if (merged.config.tieWordEmbeddings) hfNames.push(['output.weight', 'model.embed_tokens.weight']);
  return hfNames.map(([meta, hf]) => [meta, metaTensor(merged, meta, hf, dtype, shard, shards)]);
}

function metaTensor(merged: MergedCheckpoint, meta: string, hf: string, dtype: FloatDType | null, shard: number, shards: number): PendingTensor {
  const info = merged.info(hf);
  const target = dtype ?? info.dtype;
  const heads = rotaryHeads(merged.config, hf);
  const dim = shards > 1 ? metaSplitDim(meta) : null;
  const [rows, cols] = [info.shape[0]!, info.shape[1] ?? 1];
  return {
    dtype: target,
    shape: dim === null ? info.shape : info.shape.map((n, d) => (d === dim ? n / shards : n)),
    load: () => {
      let data = merged.read(hf, target).data as Float32Array | Uint16Array;
      if (heads !== null) data = permuteRotaryRows(data, heads, merged.config.headDim, cols, 'interleaved');
      return dim === null ? data : sliceAlong(data, rows, cols, dim, shard, shards);
    },
  };
}

/** Reads an HF-named weight back from Meta's file(s): model-parallel parts joined, q/k rows back in rotate-half order. */
export function readMetaAsHf(files: TorchFile[], config: LlamaConfig, hfName: string): HostTensor {
  const meta = renameWeight(hfName, 'hf', 'meta');
  const parts = files.map((f) => f.read(meta));
  const first = parts[0]!;
  if (first.dtype !== 'F32' && first.dtype !== 'F16' && first.dtype !== 'BF16') throw new UserError(`${files[0]!.path}: ${meta} is ${first.dtype}, not a float tensor`);
  const dim = files.length > 1 ? metaSplitDim(meta) : null;
  const shape = dim === null ? first.shape : first.shape.map((n, d) => (d === dim ? n * files.length : n));
  const [rows, cols] = [shape[0]!, shape[1] ?? 1];
  let data = dim === null ? (first.data as Float32Array | Uint16Array) : joinAlong(parts.map((p) => p.data as Float32Array | Uint16Array), rows, cols, dim);
  const heads = rotaryHeads(config, hfName);
  if (heads !== null) data = permuteRotaryRows(data, heads, config.headDim, cols, 'rotate-half');
  return { dtype: first.dtype, shape, data };
}
