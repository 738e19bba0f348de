// --base_model, --lora_weights and --data_path given as Hub ids (huggyllama/llama-7b, tloen/alpaca-lora-7b,
// yahma/alpaca-cleaned), for every command that reads them: a local path
// wins; otherwise the files a run needs come from the cache, or are downloaded into it (download.ts).
// HF_HUB_OFFLINE=1 uses the cache only.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { cachedSnapshot, hubCacheDir, repoFolder, type RepoType } from './cache.ts';
import { downloadFile, repoInfo, writeRef } from './download.ts';

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;
const MODEL_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer.model', 'tokenizer_config.json', 'special_tokens_map.json'];

/** True for `org/name` that is not a local path. */
export function isHubId(s: string): boolean {
  return REPO_ID.test(s) && !existsSync(s) && !s.includes('..');
}

/** The weight files to fetch: safetensors (with their index) when the repository has them, else .bin. */
export function modelFiles(files: readonly string[]): string[] {
  const top = files.filter((f) => !f.includes('/'));
  const safetensors = top.filter((f) => /^model.*\.safetensors(\.index\.json)?$/.test(f));
  const weights = safetensors.length ? safetensors : top.filter((f) => /^pytorch_model.*\.bin(\.index\.json)?$/.test(f));
  return [...MODEL_FILES.filter((f) => top.includes(f)), ...weights];
}

/** The revision where the Hub keeps its Parquet conversion of every public data set. */
export const PARQUET_REVISION = 'refs/convert/parquet';

/**
 * The data files of a data set repository: its only .json/.jsonl, or the one named like train; else its Parquet
 * files of the train split (all shards, in name order). Empty when it has neither.
 */
export function dataFiles(repoId: string, files: readonly string[]): string[] {
  const data = files.filter((f) => /\.jsonl?$/.test(f) && !/(^|\/)(dataset_info|dataset_infos|config)\.json$/.test(f));
  const train = data.filter((f) => /train/i.test(f));
  const pick = data.length === 1 ? data : train.length === 1 ? train : [];
  if (pick.length === 1) return pick;
  if (data.length > 1) throw new UserError(`--data_path ${repoId}: it has several data files (${data.join(', ')}); download the file you want and pass its path`);
  const parquet = files.filter((f) => f.endsWith('.parquet')).sort();
  const trainParquet = parquet.filter((f) => /(^|[/_-])train([/_.-]|$)/i.test(f));
  return trainParquet.length ? trainParquet : parquet;
}

/** The snapshot folder holding the chosen files, and the chosen files (paths inside it). */
async function snapshot(
  type: RepoType, repoId: string, revision: string, choose: (files: string[]) => string[], log: (line: string) => void,
): Promise<{ dir: string; files: string[] }> {
  const cache = hubCacheDir();
  if (process.env.HF_HUB_OFFLINE === '1') {
    const dir = cachedSnapshot(cache, type, repoId, revision);
    if (!dir) throw new UserError(`${repoId} is not in the cache at ${cache}, and HF_HUB_OFFLINE=1 forbids downloading it`);
    return { dir, files: choose(readdirSync(dir, { recursive: true, encoding: 'utf8' })) };
  }
  const info = await repoInfo(type, repoId, revision);
  const files = choose(info.files);
  const dir = join(repoFolder(cache, type, repoId), 'snapshots', info.commit);
  const missing = files.filter((f) => !existsSync(join(dir, f)));
  if (missing.length) log(`hub: downloading ${missing.join(', ')} of ${repoId} into ${cache}`);
  for (const f of missing) await downloadFile(cache, type, repoId, info, f);
  await writeRef(cache, type, repoId, revision, info.commit);
  return { dir, files };
}

/** A local model folder for --base_model: the path itself, or the Hub snapshot of an id. */
export async function resolveModelDir(idOrPath: string, log: (line: string) => void, revision = 'main'): Promise<string> {
  if (!isHubId(idOrPath)) return idOrPath;
  const { dir } = await snapshot('model', idOrPath, revision, (files) => {
    const chosen = modelFiles(files);
    if (!chosen.includes('config.json') || !chosen.some((f) => /\.(safetensors|bin)$/.test(f))) {
      throw new UserError(`--base_model ${idOrPath}: the repository has no config.json with safetensors or .bin weights`);
    }
    return chosen;
  }, log);
  log(`hub: --base_model ${idOrPath} is ${dir}`);
  return dir;
}

/** A folder holding --base_model's config.json: the path itself, or the Hub snapshot of an id with only config.json fetched (the planner's). */
export async function resolveModelConfigDir(idOrPath: string, log: (line: string) => void, revision = 'main'): Promise<string> {
  if (!isHubId(idOrPath)) return idOrPath;
  const { dir } = await snapshot('model', idOrPath, revision, (files) => {
    if (!files.includes('config.json')) throw new UserError(`--base_model ${idOrPath}: the repository has no config.json`);
    return ['config.json'];
  }, log);
  return dir;
}

/** A local adapter folder for --lora_weights: the path itself, or the Hub snapshot of a PEFT adapter id (e.g. tloen/alpaca-lora-7b). */
export async function resolveAdapterDir(idOrPath: string, log: (line: string) => void, revision = 'main'): Promise<string> {
  if (!isHubId(idOrPath)) return idOrPath;
  const { dir } = await snapshot('model', idOrPath, revision, (files) => {
    const chosen = files.filter((f) => /^adapter_(config\.json|model\.(safetensors|bin))$/.test(f));
    const weights = chosen.filter((f) => f !== 'adapter_config.json');
    if (!chosen.includes('adapter_config.json') || weights.length === 0) {
      throw new UserError(`--lora_weights ${idOrPath}: the repository has no adapter_config.json with adapter_model.safetensors or .bin`);
    }
    return ['adapter_config.json', weights.find((f) => f.endsWith('.safetensors')) ?? weights[0]!];
  }, log);
  log(`hub: --lora_weights ${idOrPath} is ${dir}`);
  return dir;
}

/** Options whose baseModel and loraWeights are local folders: Hub ids among them fetched (logged on stderr). */
export async function resolveModelInputs<T extends { baseModel: string; loraWeights?: string }>(o: T): Promise<T> {
  const log = (line: string) => console.error(line);
  const loraWeights = o.loraWeights && (await resolveAdapterDir(o.loraWeights, log));
  return { ...o, baseModel: await resolveModelDir(o.baseModel, log), ...(loraWeights ? { loraWeights } : {}) };
}

/**
 * The local data files for one --data_path entry: the path itself, or the data files of a Hub data set (a JSON file,
 * or Parquet shards; a data set with neither on its main branch is read from the Hub's Parquet conversion).
 */
export async function resolveDataFiles(idOrPath: string, log: (line: string) => void, revision = 'main'): Promise<string[]> {
  if (!isHubId(idOrPath) || /\.(json|jsonl|txt|parquet)$/.test(idOrPath)) return [idOrPath];
  let { dir, files } = await snapshot('dataset', idOrPath, revision, (all) => dataFiles(idOrPath, all), log);
  if (files.length === 0 && revision === 'main') {
    ({ dir, files } = await snapshot('dataset', idOrPath, PARQUET_REVISION, (all) => dataFiles(idOrPath, all), log));
  }
  if (files.length === 0) throw new UserError(`--data_path ${idOrPath}: the data set has no .json, .jsonl or .parquet file; download the data and pass its path`);
  const paths = files.map((f) => join(dir, f));
  log(`hub: --data_path ${idOrPath} is ${paths.length === 1 ? paths[0] : `${paths.length} Parquet files in ${dir}`}`);
  return paths;
}
