// What `generate` and `serve` hold while they run: the base model on a backend, its tokenizer, the prompt
// template, named adapters applied unmerged (any one per request), the chat template, and the EOS / pad
// ids from generation_config.json (else config.json, else the tokenizer). Loading only; no generation.

import type { ComputeDType } from '../engine/backend.ts';
import { applyComputeDtype } from '../model/compute-dtype.ts';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { loadLlamaConfig } from '../arch/llama-config.ts';
import type { Backend } from '../engine/backend.ts';
import type { DType } from '../engine/dtype.ts';
import type { BnbConfig } from '../formats/bnb-config.ts';
import { UserError } from '../errors.ts';
import { adapterChatTemplate, tokenizerChatTemplate } from '../data/chat-template-source.ts';
import { Prompter } from '../data/prompter.ts';
import type { LoraUse, Model } from '../model/llama.ts';
import { loadModel } from '../model/load.ts';
import { packForInference } from '../model/pack.ts';
import { hasModulesToSave, loadAdapterOnto, loadLoraAdapter } from '../model/lora-io.ts';
import { resolveAdapterDir, resolveModelDir } from '../hub/resolve.ts';
import { hasTokenizer, loadTokenizer } from '../tokenizer/load.ts';
import { readTokenizerSettings } from '../tokenizer/tokenizer-config.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';

/** The model side: weights, adapters and special ids (a raw-ids run needs no tokenizer). */
export interface ModelSet {
  model: Model;
  baseName: string; // the id that picks the base model without an adapter
  adapters: Map<string, LoraUse>; // by id; a server adds and removes adapters while it runs
  defaultId: string; // the model a request without an id gets: the first adapter loaded at start, else the base
  eosTokenIds: number[];
  padTokenId: number;
  /**
   * The adapter whose modules_to_save copies replaced the base's embed_tokens / lm_head (loaded alone, the base
   * grown to its vocabulary); null when the base is as stored. The base is then not served on its own.
   */
  modulesOwner: string | null;
}

export interface Runtime extends ModelSet {
  tokenizer: Tokenizer;
  tokenizerConfig: Record<string, unknown>; // tokenizer_config.json, for chat templates' special tokens
  /** The tokenizer's chat template. */
  chatTemplate: string | null;
  /** The chat templates adapters were trained with (saved beside them by finetune), by adapter id. */
  adapterChatTemplates: Map<string, string>;
  prompter: Prompter;
}

export interface RuntimeOptions {
  backend: Backend;
  baseModel: string;
  /** Adapter folders, each `DIR` (named by its folder) or `NAME=DIR`. */
  loraWeights: readonly string[];
  /** Folder with the tokenizer files; defaults to baseModel. */
  tokenizer?: string;
  promptTemplate?: string;
  /** Weight storage; 'auto' widens to f32 on the js backend (it computes in f32 and would widen every call). */
  dtype?: 'auto' | Exclude<DType, 'i32'>;
  /** Quantize the base's decoder linears on load (a base stored quantized is used as it is). */
  quantize?: BnbConfig | null;
  /** What bf16 base weights' products compute in (model/compute-dtype.ts); default f32. */
  computeDtype?: ComputeDType;
}

/** The local folders of the base and adapters (Hub ids fetched into the HF cache, logged on stderr), named as given. */
interface Sources {
  baseDir: string;
  baseName: string;
  adapters: [name: string, dir: string][];
}

async function resolveSources(o: RuntimeOptions): Promise<Sources> {
  const log = (line: string) => console.error(line);
  const baseName = basename(resolve(o.baseModel));
  const adapters: [string, string][] = [];
  for (const spec of o.loraWeights) {
    const eq = spec.indexOf('=');
    const dir = eq > 0 ? spec.slice(eq + 1) : spec;
    const name = eq > 0 ? spec.slice(0, eq) : basename(resolve(dir));
    if (adapters.some(([n]) => n === name) || name === baseName) throw new UserError(`--lora_weights: two models are named "${name}": name them with NAME=DIR`);
    adapters.push([name, await resolveAdapterDir(dir, log)]);
  }
  return { baseDir: await resolveModelDir(o.baseModel, log), baseName, adapters };
}

export async function loadModelSet(o: RuntimeOptions): Promise<ModelSet> {
  return modelSet(o, await resolveSources(o));
}

async function modelSet(o: RuntimeOptions, src: Sources): Promise<ModelSet> {
  const dtype = o.dtype === 'auto' || o.dtype === undefined ? (o.backend.name === 'js' ? 'f32' : undefined) : o.dtype;
  const model = await loadModel(o.backend, src.baseDir, { dtype, quantize: o.quantize });
  applyComputeDtype(o.backend, o.computeDtype ?? 'f32');
  const adapters = new Map<string, LoraUse>();
  const owner = modulesOwnerOf(src);
  for (const [name, dir] of src.adapters) {
    const adapter = owner ? await loadAdapterOnto(model, dir) : loadLoraAdapter(o.backend, model.config, dir);
    adapters.set(name, { adapter, dropout: 0, seed: 0 });
  }
  packForInference(model); // after modules_to_save adapters replaced the head: it is packed as served
  return {
    model, baseName: src.baseName, adapters, defaultId: src.adapters[0]?.[0] ?? src.baseName, ...specialIds(src.baseDir, model), modulesOwner: owner?.[0] ?? null,
  };
}

/** The one adapter with modules_to_save, which must come alone since it replaces base modules; null when none has them. */
function modulesOwnerOf(src: Sources): [name: string, dir: string] | null {
  const owner = src.adapters.find(([, dir]) => hasModulesToSave(dir));
  if (owner && src.adapters.length > 1) {
    throw new UserError(`--lora_weights ${owner[1]} has modules_to_save, which replace the base's embed_tokens/lm_head: load it alone (one --lora_weights), or merge it (alpaca-lora export-hf) and load the merged folder as --base_model`);
  }
  return owner ?? null;
}

export async function loadRuntime(o: RuntimeOptions): Promise<Runtime> {
  const prompter = Prompter.load(o.promptTemplate);
  const src = await resolveSources(o);
  // an adapter trained with new tokens holds its tokenizer: it is used, as its embedding rows belong to it
  const ownerDir = modulesOwnerOf(src)?.[1];
  const tokenizerDir = o.tokenizer ?? (ownerDir !== undefined && hasTokenizer(ownerDir) ? ownerDir : src.baseDir);
  const tokenizer = loadTokenizer(tokenizerDir);
  const set = await modelSet(o, src);
  if (tokenizer.vocabSize > set.model.config.vocabSize) {
    throw new UserError(`the tokenizer in ${tokenizerDir} has ${tokenizer.vocabSize} tokens but the model has ${set.model.config.vocabSize}: pass the tokenizer that belongs to --base_model`);
  }
  const settings = readTokenizerSettings(tokenizerDir);
  const trained = src.adapters.flatMap(([name, dir]): [string, string][] => {
    const t = adapterChatTemplate(dir);
    return t === null ? [] : [[name, t]];
  });
  const eos = set.eosTokenIds.length ? set.eosTokenIds : [tokenizer.eosId];
  const firstAdded = tokenizerDir === ownerDir ? loadLlamaConfig(src.baseDir).vocabSize : tokenizer.vocabSize;
  return {
    ...set,
    eosTokenIds: [...eos, ...addedTurnEnds(tokenizer, firstAdded).filter((id) => !eos.includes(id))],
    tokenizer,
    tokenizerConfig: settings.rawConfig,
    chatTemplate: tokenizerChatTemplate(tokenizerDir, settings.rawConfig),
    adapterChatTemplates: new Map(trained),
    prompter,
  };
}

/** End-of-turn tokens (chatml's, Llama 3's, Phi's, Gemma's), which llama.cpp also stops at by their text. */
const TURN_ENDS = ['<|im_end|>', '<|eot_id|>', '<|end|>', '<end_of_turn>'];

/** The ends of turn among an adapter's new special tokens (ids from firstAdded on): generation stops at them too. */
function addedTurnEnds(tokenizer: Tokenizer, firstAdded: number): number[] {
  return TURN_ENDS.map((text) => tokenizer.encode(text, { addBos: false, addEos: false }))
    .filter((ids) => ids.length === 1 && ids[0]! >= firstAdded && tokenizer.isSpecial(ids[0]!)).map((ids) => ids[0]!);
}

/** The default model id: the first adapter loaded at start (as the seed serves base + adapter), else the base. */
export function defaultModelId(set: ModelSet): string {
  return set.defaultId;
}

/** The model ids a request may name: the base (unless an adapter replaced its modules) and every adapter. */
export function servedModels(set: ModelSet): string[] {
  return [...(set.modulesOwner ? [] : [set.baseName]), ...set.adapters.keys()];
}

/** The chat template for a model id (none: the default model): the one its adapter was trained with, else the tokenizer's. */
export function chatTemplateOf(rt: Runtime, id?: string): string | null {
  const trained = rt.adapterChatTemplates;
  return (trained?.size ? trained.get(id || defaultModelId(rt)) : undefined) ?? rt.chatTemplate;
}

/** The adapter a model id names (null: the base model); no id means the default; an unknown id is an error. */
export function pickAdapter(set: ModelSet, id: string | undefined): LoraUse | null {
  const name = id === undefined || id === '' ? defaultModelId(set) : id;
  if (name === set.baseName && set.modulesOwner) {
    throw new UserError(`model "${name}" is not served on its own here: adapter "${set.modulesOwner}" replaced its embed_tokens/lm_head (modules_to_save); ask for "${set.modulesOwner}", or serve the base without it`);
  }
  if (name === set.baseName) return null;
  const lora = set.adapters.get(name);
  if (!lora) throw new UserError(`model "${name}" is not loaded; available: ${[set.baseName, ...set.adapters.keys()].join(', ')}`);
  return lora;
}

/** EOS and pad ids from generation_config.json, else config.json (pad 0 when neither says, as alpaca-lora sets it). */
function specialIds(dir: string, model: Model): { eosTokenIds: number[]; padTokenId: number } {
  const path = join(dir, 'generation_config.json');
  const gen = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>) : {};
  const ids = (v: unknown): number[] | null => (Number.isInteger(v) ? [v as number] : Array.isArray(v) && v.every(Number.isInteger) ? (v as number[]) : null);
  const eos = ids(gen.eos_token_id) ?? ids(model.config.eosTokenId) ?? [];
  const pad = ids(gen.pad_token_id)?.[0] ?? model.config.padTokenId ?? 0;
  return { eosTokenIds: eos, padTokenId: pad };
}
