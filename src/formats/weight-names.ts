// The weight names as data: Hugging Face names (which are also ours), their Meta and GGUF equivalents,
// PEFT's LoRA keys, the tensors a config implies, and the check that a checkpoint holds exactly those.
// Names only: Meta's q/k row permutation and GGUF's layouts belong to their format files.

import type { LlamaConfig } from '../arch/llama-config.ts';
import { PROJECTION_INFO, PROJECTIONS, projectionFeatures, type Projection } from '../arch/projections.ts';
import { UserError } from '../errors.ts';
import type { StorageDType } from './host-tensor.ts';
import type { TensorInfo } from './safetensors.ts';

export type Naming = 'hf' | 'meta' | 'gguf';

type NameRow = Readonly<Record<Naming, string | null>>; // null: that format has no such tensor

/** Per-layer names, after `model.layers.N.` / `layers.N.` / `blk.N.`. Meta: w1 = gate, w2 = down, w3 = up. */
const LAYER_NAMES: readonly NameRow[] = [
  { hf: 'self_attn.q_proj.weight', meta: 'attention.wq.weight', gguf: 'attn_q.weight' },
  { hf: 'self_attn.k_proj.weight', meta: 'attention.wk.weight', gguf: 'attn_k.weight' },
  { hf: 'self_attn.v_proj.weight', meta: 'attention.wv.weight', gguf: 'attn_v.weight' },
  { hf: 'self_attn.o_proj.weight', meta: 'attention.wo.weight', gguf: 'attn_output.weight' },
  { hf: 'self_attn.q_proj.bias', meta: null, gguf: 'attn_q.bias' },
  { hf: 'self_attn.k_proj.bias', meta: null, gguf: 'attn_k.bias' },
  { hf: 'self_attn.v_proj.bias', meta: null, gguf: 'attn_v.bias' },
  { hf: 'self_attn.o_proj.bias', meta: null, gguf: 'attn_output.bias' },
  { hf: 'mlp.gate_proj.weight', meta: 'feed_forward.w1.weight', gguf: 'ffn_gate.weight' },
  { hf: 'mlp.down_proj.weight', meta: 'feed_forward.w2.weight', gguf: 'ffn_down.weight' },
  { hf: 'mlp.up_proj.weight', meta: 'feed_forward.w3.weight', gguf: 'ffn_up.weight' },
  { hf: 'mlp.gate_proj.bias', meta: null, gguf: 'ffn_gate.bias' },
  { hf: 'mlp.down_proj.bias', meta: null, gguf: 'ffn_down.bias' },
  { hf: 'mlp.up_proj.bias', meta: null, gguf: 'ffn_up.bias' },
  { hf: 'input_layernorm.weight', meta: 'attention_norm.weight', gguf: 'attn_norm.weight' },
  { hf: 'post_attention_layernorm.weight', meta: 'ffn_norm.weight', gguf: 'ffn_norm.weight' },
];

const MODEL_NAMES: readonly NameRow[] = [
  { hf: 'model.embed_tokens.weight', meta: 'tok_embeddings.weight', gguf: 'token_embd.weight' },
  { hf: 'model.norm.weight', meta: 'norm.weight', gguf: 'output_norm.weight' },
  { hf: 'lm_head.weight', meta: 'output.weight', gguf: 'output.weight' },
];

const LAYER_PREFIX: Readonly<Record<Naming, string>> = { hf: 'model.layers.', meta: 'layers.', gguf: 'blk.' };

/** `name` in naming `from`, renamed to naming `to`; an unknown name is an error that names it. */
export function renameWeight(name: string, from: Naming, to: Naming): string {
  const row = MODEL_NAMES.find((r) => r[from] === name);
  if (row) return targetName(row, name, to, '');
  const prefix = LAYER_PREFIX[from];
  const m = name.startsWith(prefix) ? /^(\d+)\.(.+)$/.exec(name.slice(prefix.length)) : null;
  const layerRow = m ? LAYER_NAMES.find((r) => r[from] === m[2]) : undefined;
  if (!m || !layerRow) throw new UserError(`unknown ${from} weight name "${name}"`);
  return targetName(layerRow, name, to, `${LAYER_PREFIX[to]}${m[1]}.`);
}

function targetName(row: NameRow, name: string, to: Naming, prefix: string): string {
  const target = row[to];
  if (target === null) throw new UserError(`weight "${name}" has no ${to} equivalent`);
  return prefix + target;
}

export type LoraMatrix = 'A' | 'B';

const PEFT_PREFIX = 'base_model.model.model.layers.';

/** PEFT's key in adapter files: base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight */
export function peftKey(layer: number, projection: Projection, matrix: LoraMatrix): string {
  return `${PEFT_PREFIX}${layer}.${PROJECTION_INFO[projection].block}.${projection}.lora_${matrix}.weight`;
}

/** PEFT's file key of a DoRA magnitude: base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector (no adapter name, no .weight). */
export function peftMagnitudeKey(layer: number, projection: Projection): string {
  return `${PEFT_PREFIX}${layer}.${PROJECTION_INFO[projection].block}.${projection}.lora_magnitude_vector`;
}

/** Modules PEFT's modules_to_save may name here: a trained full copy replacing the base's. */
export const MODULES_TO_SAVE = { embed_tokens: 'model.embed_tokens.weight', lm_head: 'lm_head.weight' } as const;
export type ModuleToSave = keyof typeof MODULES_TO_SAVE;

/** PEFT's file key of a modules_to_save copy: base_model.model.model.embed_tokens.weight, base_model.model.lm_head.weight. */
export function peftModuleKey(module: ModuleToSave): string {
  return `base_model.model.${MODULES_TO_SAVE[module]}`;
}

/** PEFT's in-memory parameter name, with the adapter name: ....q_proj.lora_A.default.weight */
export function peftParamName(layer: number, projection: Projection, matrix: LoraMatrix): string {
  return peftKey(layer, projection, matrix).replace(/\.weight$/, '.default.weight');
}

/**
 * The (layer, projection, matrix) of a PEFT file key or in-memory name (a DoRA magnitude: matrix 'magnitude');
 * null when it is not a LoRA key.
 */
export function parsePeftKey(key: string): { layer: number; projection: Projection; matrix: LoraMatrix | 'magnitude' } | null {
  const m = /^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.(?:lora_([AB])(?:\.default)?\.weight|lora_magnitude_vector(?:\.default\.weight)?)$/.exec(key);
  if (!m) return null;
  const projection = m[3] as Projection;
  if (!Object.hasOwn(PROJECTION_INFO, projection) || PROJECTION_INFO[projection].block !== m[2]) return null;
  return { layer: Number(m[1]), projection, matrix: (m[4] as LoraMatrix | undefined) ?? 'magnitude' };
}

/** Every tensor the config implies, in HF order, with its shape. */
export function expectedWeights(config: LlamaConfig): { name: string; shape: number[] }[] {
  const C = config.hiddenSize;
  const out = [{ name: 'model.embed_tokens.weight', shape: [config.vocabSize, C] }];
  for (let l = 0; l < config.numLayers; l++) {
    for (const p of PROJECTIONS) {
      const { inFeatures, outFeatures } = projectionFeatures(config, p);
      const base = `model.layers.${l}.${PROJECTION_INFO[p].block}.${p}`;
      out.push({ name: `${base}.weight`, shape: [outFeatures, inFeatures] });
      if (config.biases[PROJECTION_INFO[p].bias]) out.push({ name: `${base}.bias`, shape: [outFeatures] });
    }
    out.push({ name: `model.layers.${l}.input_layernorm.weight`, shape: [C] });
    out.push({ name: `model.layers.${l}.post_attention_layernorm.weight`, shape: [C] });
  }
  out.push({ name: 'model.norm.weight', shape: [C] });
  if (!config.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [config.vocabSize, C] });
  return out;
}

const FLOAT_DTYPES: readonly StorageDType[] = ['F32', 'F16', 'BF16'];
const IGNORED = /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/; // a buffer old checkpoints saved

/**
 * Checks that `reader` holds exactly the weights `config` implies, with their shapes and a float dtype.
 * Tolerated: rotary_emb.inv_freq buffers, and lm_head.weight beside tied embeddings. Throws on the first mismatch.
 */
export function checkCheckpointWeights(
  reader: { names(): string[]; info(name: string): TensorInfo },
  config: LlamaConfig,
  source: string,
): void {
  const present = new Set(reader.names());
  const expected = expectedWeights(config);
  for (const { name, shape } of expected) {
    if (!present.has(name)) {
      throw new UserError(`${source} has no tensor ${name} (shape [${shape.join(', ')}]): do the weights belong to the model its config.json describes?`);
    }
    const info = reader.info(name);
    if (info.shape.join() !== shape.join()) {
      throw new UserError(`${source}: ${name} has shape [${info.shape.join(', ')}], but config.json implies [${shape.join(', ')}]`);
    }
    if (!FLOAT_DTYPES.includes(info.dtype)) throw new UserError(`${source}: ${name} is ${info.dtype}; weights must be F32, F16 or BF16`);
  }
  const known = new Set(expected.map((e) => e.name));
  for (const name of present) {
    if (known.has(name) || IGNORED.test(name) || (name === 'lm_head.weight' && config.tieWordEmbeddings)) continue;
    throw new UserError(`${source} holds ${name}, which the LLaMA architecture of its config.json has no place for`);
  }
}
