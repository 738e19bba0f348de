// Trained base weights in and out of a Hugging Face model folder, for full and freeze fine-tuning: every weight
// in sharded safetensors (the trained ones float32 from memory, the frozen ones as the base stores them),
// config.json and the base's generation and tokenizer files, so the folder is itself a --base_model. Also the
// check after writing, and loading trained tensors back (resume, load_best_model_at_end).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { LlamaConfig } from '../../arch/llama-config.ts';
import type { Backend } from '../../engine/backend.ts';
import { UserError } from '../../errors.ts';
import { copyPresent, TOKENIZER_FILES, writeConfig } from '../../export/model-files.ts';
import { openCheckpoint } from '../../formats/hf-checkpoint.ts';
import { toFloat32, type HostTensor } from '../../formats/host-tensor.ts';
import type { OutputTensor } from '../../formats/output-tensor.ts';
import { writeShardedSafetensors } from '../../formats/safetensors-write.ts';
import { expectedWeights } from '../../formats/weight-names.ts';
import type { TrainableParam } from '../optimizer.ts';
import { writeTokenizerFilesWith, type AddedToken } from '../../tokenizer/added-tokens.ts';

/** The seed's shard size for exported checkpoints. */
const MAX_SHARD_BYTES = 400e6;

async function hostOf(be: Backend, p: TrainableParam): Promise<HostTensor> {
  return { dtype: 'F32', shape: [...p.param.shape], data: (await be.download(p.param)) as Float32Array };
}

/**
 * Writes the model folder into `dir` (which exists): the trained `params` from memory, every other weight copied
 * from `baseDir`. `allTrained` sets config.json's dtype to float32; config.json's vocab_size is `config`'s, the
 * tokenizer files carry `added` (--new_special_tokens). Returns the file names written.
 */
export async function writeModelFolder(
  be: Backend, config: LlamaConfig, baseDir: string, params: readonly TrainableParam[], allTrained: boolean, dir: string,
  added: readonly AddedToken[] = [],
): Promise<string[]> {
  const trained = new Map(params.map((p) => [p.name, p]));
  const base = await openCheckpoint(baseDir, { flag: '--base_model' });
  try {
    const entries = expectedWeights(config).map(({ name }): [string, OutputTensor] => {
      const p = trained.get(name);
      if (p) return [name, { dtype: 'F32', shape: [...p.param.shape], load: async () => (await hostOf(be, p)).data }];
      const info = base.info(name);
      return [name, { dtype: info.dtype, shape: [...info.shape], load: () => base.read(name).data }];
    });
    const files = await writeShardedSafetensors(dir, entries, MAX_SHARD_BYTES);
    await writeConfig(baseDir, dir, allTrained ? 'float32' : null, config.vocabSize);
    const tokenizer = added.length
      ? [...(await writeTokenizerFilesWith(baseDir, dir, added)), ...(await copyPresent(baseDir, dir, ['chat_template.jinja']))]
      : await copyPresent(baseDir, dir, TOKENIZER_FILES);
    return [...files, 'config.json', ...(await copyPresent(baseDir, dir, ['generation_config.json'])), ...tokenizer];
  } finally {
    base.close();
  }
}

/** Re-reads `dir` and requires every trained tensor there, float32, equal bit for bit to memory. */
export async function verifyModelFolder(be: Backend, params: readonly TrainableParam[], dir: string): Promise<void> {
  const written = await openCheckpoint(dir);
  try {
    for (const p of params) {
      const saved = written.read(p.name);
      const mine = (await hostOf(be, p)).data as Float32Array;
      const theirs = saved.data as Float32Array;
      const same = saved.dtype === 'F32' && theirs.length === mine.length && theirs.every((v, i) => Object.is(v, mine[i]));
      if (!same) throw new Error(`${dir}: ${p.name} as written differs from the weights in memory; nothing was saved`);
    }
  } finally {
    written.close();
  }
}

/** Uploads the trained tensors saved in the model folder `dir` into `params`. */
export async function loadModelFolder(be: Backend, params: readonly TrainableParam[], dir: string): Promise<void> {
  if (!['model.safetensors', 'model.safetensors.index.json'].some((f) => existsSync(join(dir, f)))) {
    throw new UserError(`${dir} holds no model weights (model.safetensors): full and freeze fine-tuning resume from their own checkpoint-N folders`);
  }
  const saved = await openCheckpoint(dir);
  try {
    for (const p of params) {
      if (!saved.names().includes(p.name)) throw new UserError(`${dir} lacks ${p.name}: it was not written by a run training these weights`);
      const h = saved.read(p.name);
      if (h.shape.join() !== p.param.shape.join()) throw new UserError(`${dir}: ${p.name} has shape [${h.shape}], the model needs [${p.param.shape}]`);
      be.upload(p.param, toFloat32(h));
    }
  } finally {
    saved.close();
  }
}
