// Opening the weights of a Hugging Face model folder, whichever way they are stored: model.safetensors,
// sharded safetensors with model.safetensors.index.json, pytorch_model.bin, or sharded .bin with its index.
// Tensors are read one at a time from the right file. Not config.json (see arch/llama-config.ts).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import type { HostTensor } from './host-tensor.ts';
import { SafetensorsFile } from './safetensors.ts';
import type { TensorInfo } from './safetensors.ts';
import { TorchFile } from './torch-pickle.ts';
import { checkFolder } from '../util/check-folder.ts';

/** One file of tensors; SafetensorsFile and TorchFile both are. */
interface TensorFile {
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  read(name: string): HostTensor;
  close(): void;
}

export interface CheckpointReader {
  readonly dir: string;
  /** The file or index the weights were found in, relative to `dir`. */
  readonly source: string;
  names(): string[];
  info(name: string): TensorInfo;
  read(name: string): HostTensor;
  close(): void;
}

export interface OpenOptions {
  /** How the folder was given, for messages (e.g. "--base_model"). */
  flag?: string;
}

const LAYOUTS = [
  { file: 'model.safetensors.index.json', open: SafetensorsFile.open, sharded: true },
  { file: 'model.safetensors', open: SafetensorsFile.open, sharded: false },
  { file: 'pytorch_model.bin.index.json', open: TorchFile.open, sharded: true },
  { file: 'pytorch_model.bin', open: TorchFile.open, sharded: false },
] as const;

/** Opens the weights in `dir`, preferring safetensors. Only headers (and pickles) are read here. */
export async function openCheckpoint(dir: string, options: OpenOptions = {}): Promise<CheckpointReader> {
  const label = options.flag ? `${options.flag} ${dir}` : dir;
  checkFolder(dir, label);
  const layout = LAYOUTS.find((l) => existsSync(join(dir, l.file)));
  if (!layout) {
    throw new UserError(
      `${label} has no weights (${LAYOUTS.map((l) => l.file).join(', ')}): pass the folder that holds config.json and the *.safetensors files`,
    );
  }
  if (!layout.sharded) return new Checkpoint(dir, layout.file, new Map([[layout.file, layout.open(join(dir, layout.file))]]), null);
  const weightMap = readWeightMap(join(dir, layout.file));
  const files = new Map<string, TensorFile>();
  try {
    for (const shard of new Set(weightMap.values())) {
      if (!existsSync(join(dir, shard))) throw new UserError(`${label}: ${layout.file} names ${shard}, which is missing`);
      files.set(shard, layout.open(join(dir, shard)));
    }
    for (const [name, shard] of weightMap) {
      if (!files.get(shard)!.has(name)) throw new UserError(`${label}: ${layout.file} puts "${name}" in ${shard}, which does not hold it`);
    }
  } catch (err) {
    for (const f of files.values()) f.close();
    throw err;
  }
  return new Checkpoint(dir, layout.file, files, weightMap);
}

function readWeightMap(indexPath: string): Map<string, string> {
  let index: unknown;
  try {
    index = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (err) {
    throw new UserError(`${indexPath} is not valid JSON: ${(err as Error).message}`);
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null) throw new UserError(`${indexPath} has no weight_map of tensor names to shard file names`);
  const bad = Object.entries(weightMap).find(([, v]) => typeof v !== 'string' || v.includes('/') || v === '' || v === '.' || v === '..');
  if (bad) throw new UserError(`${indexPath}: weight_map maps ${bad[0]} to ${JSON.stringify(bad[1])}, which is not the name of a shard file beside it`);
  return new Map(Object.entries(weightMap as Record<string, string>));
}

class Checkpoint implements CheckpointReader {
  constructor(
    readonly dir: string,
    readonly source: string,
    private readonly files: Map<string, TensorFile>,
    private readonly weightMap: Map<string, string> | null,
  ) {}

  names(): string[] {
    return this.weightMap ? [...this.weightMap.keys()] : [...this.files.values()][0]!.names();
  }

  info(name: string): TensorInfo {
    return this.fileOf(name).info(name);
  }

  read(name: string): HostTensor {
    return this.fileOf(name).read(name);
  }

  close(): void {
    for (const f of this.files.values()) f.close();
  }

  private fileOf(name: string): TensorFile {
    const file = this.weightMap ? this.files.get(this.weightMap.get(name) ?? '') : [...this.files.values()][0];
    if (!file) throw new UserError(`${join(this.dir, this.source)} has no tensor named "${name}"`);
    return file;
  }
}
