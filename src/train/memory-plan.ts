// The planner: a fine-tuning run's peak memory, predicted from the model's shape and the run's settings and split
// into weights, trainable tensors (parameters, gradients, AdamW moments), activations and transient workspace, on
// cpu/js (peak RSS, the process's own baseline included) and cuda (device memory the addon reserves). Activations
// are activations.ts's plan, priced; not a measurement (test/unit/train/memory-plan.test.ts holds it to one).

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { loadLlamaConfig, parseLlamaConfig, type LlamaConfig } from '../arch/llama-config.ts';
import { projectionFeatures, type Projection } from '../arch/projections.ts';
import type { Backend } from '../engine/backend.ts';
import { UserError } from '../errors.ts';
import type { StorageDType } from '../formats/host-tensor.ts';
import { expectedWeights } from '../formats/weight-names.ts';
import { modelFiles, resolveModelConfigDir } from '../hub/resolve.ts';
import { activationDtypeFor, type ActivationDType, type ActivationDTypeChoice } from '../model/activation-dtype.ts';
import { activationPlan, bufferBytes } from '../model/activations.ts';
import { estimateWeightMemory, inspectModel, type MemoryEstimate } from '../model/inspect.ts';
import { bnbConfigOf, type QuantizationOptions } from '../model/quantization-options.ts';
import type { FinetuningType } from './finetune-options.ts';
import { freezeSelection } from './methods/freeze-selection.ts';

const MIB = 2 ** 20, GIB = 2 ** 30;

/**
 * Peak RSS of `alpaca-lora` before it loads a model: node, tsx, the CLI's modules, the cpu addon and its thread
 * pool. Measured as maxRSS of `alpaca-lora plan --backend auto` and of memory-plan-case.ts {"baseline": true}
 * (node 20, x86-64 Linux, 2 threads): 96-104 MiB over five runs.
 */
export const PROCESS_BASELINE_BYTES = 100 * MIB;

/** The cpu kernels' scratch that does not grow with the batch (the pool's per-thread buffers, GEMM packing): 4-6 MiB measured after one step, with room for OpenBLAS's. */
const CPU_FIXED_SCRATCH_BYTES = 8 * MIB;

/** cuBLASLt's workspace (native/cuda/cublaslt.cu kWorkspace). */
const CUBLASLT_WORKSPACE_BYTES = 32 * MIB;

export interface MemoryPlanSettings {
  backend: Backend['name'];
  microBatchSize: number;
  /** Padded row length: cutoff_len rounded up to a multiple of 8, as collate pads. */
  seqLen: number;
  /** null: full or freeze fine-tuning (the trained weights float32 masters with a gradient and moments). dora: a magnitude per output feature too. */
  lora: { targets: readonly Projection[]; r: number; dora?: boolean; modulesToSave?: number } | null;
  /** Without lora: the HF names of the weights that train (freeze); absent: every weight (full). */
  trainableWeights?: readonly string[];
  checkpointing: boolean;
  activationDtype: ActivationDType;
  /** --packing: rows of seqLen carry segment ids and per-token RoPE tables. */
  packed?: boolean;
}

/** Bytes per part; total is their sum. */
export interface MemoryPlan {
  settings: MemoryPlanSettings;
  weights: number;
  trainable: number;
  activations: number;
  workspace: number;
  /** The process itself (cpu/js); 0 on cuda, whose measure is the addon's reservations. */
  baseline: number;
  total: number;
}

/**
 * The plan for `config` whose weights take `weights` bytes per backend (model/inspect.ts's estimate, as stored or
 * quantized on load). cuda terms are arena reservations (slabs), as native/cuda/memory.cu carves them.
 */
export function planMemory(config: LlamaConfig, weights: MemoryEstimate, s: MemoryPlanSettings): MemoryPlan {
  const weightBytes = weights[s.backend];
  if (weightBytes === null) throw new UserError(`--backend ${s.backend} has no kernels for quantized weights: plan (and run) with --backend cpu`);
  const cuda = s.backend === 'cuda';
  const reserve = (sizes: number[]) => (cuda ? slabBytes(sizes) : sizes.reduce((a, b) => a + b, 0));
  const all = expectedWeights(config);
  const shapes = all.map((w) => w.shape.reduce((a, b) => a * b, 1));
  const params = shapes.reduce((a, b) => a + b, 0);
  const chosen = s.trainableWeights && new Set(s.trainableWeights);
  const trains = all.map((w) => !s.lora && (!chosen || chosen.has(w.name)));
  // the base as stored, less the weights whose float32 masters replace them
  const frozen = shapes.filter((_, i) => !trains[i]);

  const trainableSizes = s.lora
    ? Array.from({ length: config.numLayers }, () => s.lora!.targets.flatMap((p) => {
      const { inFeatures, outFeatures } = projectionFeatures(config, p);
      return [s.lora!.r * inFeatures * 4, outFeatures * s.lora!.r * 4, ...(s.lora!.dora ? [outFeatures * 4] : [])];
    })).flat()
    : shapes.filter((_, i) => trains[i]).map((n) => n * 4);
  // DoRA's per-pass factors m / n and 1 / n (f32, beside the adapter)
  const doraFactors = s.lora?.dora
    ? Array.from({ length: config.numLayers }, () => s.lora!.targets.flatMap((p) => Array(2).fill(projectionFeatures(config, p).outFeatures * 4) as number[])).flat()
    : [];
  // parameters, gradients, AdamW's two moments (one arena each, the moments' shared)
  const trainable = reserve([...trainableSizes, ...doraFactors]) + reserve(trainableSizes) + reserve(trainableSizes.flatMap((n) => [n, n])) +
    modulesBytes(config, s.lora?.modulesToSave ?? 0, weightBytes / params, reserve);
  const frozenBytes = frozen.map((n) => (n * weightBytes) / params);
  const weightsPart = frozen.length === 0 ? 0 : cuda ? slabBytes(frozenBytes) : frozenBytes.reduce((a, b) => a + b, 0);

  const B = s.microBatchSize, T = s.seqLen, N = B * T;
  const plan = activationPlan(config, B, T, {
    withGrad: true, loraTargets: s.lora?.targets ?? [], loraR: s.lora?.r ?? 1, dora: s.lora?.dora ?? false, checkpointing: s.checkpointing, dtype: s.activationDtype, packed: s.packed,
  });
  const activations = reserve(plan.map(bufferBytes));

  const wide = Math.max(config.hiddenSize, config.intermediateSize, config.numHeads * config.headDim);
  let workspace: number;
  if (cuda) {
    // bf16 copies of a product's input (the forward's kept, the backward's), attention's row terms; slots grow by 1/4
    workspace = CUBLASLT_WORKSPACE_BYTES + 1.25 * (2 * N * wide * 2 + B * config.numHeads * T * 4);
  } else {
    // loading: host copies not yet collected, 6 bytes per value of the largest tensor (measured on a 12M-parameter
    // checkpoint: 3 for bf16, 5.6-5.8 quantizing on load); training: the kernels' scratch, and 16-bit activations staged in float32 (an output
    // and a GEMM panel, at most 4 Mi floats each)
    const load = Math.max(...shapes) * 6;
    const staged = s.activationDtype === 'f32' ? 0 : 2 * Math.min(2 ** 22, N * wide) * 4;
    workspace = Math.max(load, CPU_FIXED_SCRATCH_BYTES + staged);
  }
  const baseline = cuda ? 0 : PROCESS_BASELINE_BYTES;
  const total = weightsPart + trainable + activations + workspace + baseline;
  return { settings: s, weights: weightsPart, trainable, activations, workspace, baseline, total };
}

/**
 * modules_to_save copies (V, C): a float32 gradient and two moments each, and the float32 master beyond what the
 * base already stores (trained in place when the base is float32).
 */
function modulesBytes(config: LlamaConfig, count: number, storedPerValue: number, reserve: (sizes: number[]) => number): number {
  if (count === 0) return 0;
  const n = config.vocabSize * config.hiddenSize;
  const sizes = Array<number>(count).fill(n * 4);
  return reserve(sizes) + reserve([...sizes, ...sizes]) + count * Math.max(0, n * (4 - storedPerValue));
}

/** Bytes cudaMalloc'd for blocks allocated in this order: slabs from 4 MiB doubling to 256 MiB, blocks over 64 MiB alone. */
function slabBytes(sizes: number[]): number {
  let total = 0, room = 0, next = 4 * MIB;
  for (const bytes of sizes) {
    const size = Math.max(256, Math.ceil(bytes / 256) * 256);
    if (size > 64 * MIB) {
      total += size;
    } else if (size > room) {
      const slab = Math.max(next, size);
      if (next < 256 * MIB) next *= 2;
      total += slab;
      room = slab - size;
    } else {
      room -= size;
    }
  }
  return total;
}

/** What the planner needs of a run: finetune's options, plus the dtype of a config.json alone's weights. */
export interface PlanRequest {
  baseModel: string;
  backend: Backend['name'];
  microBatchSize: number;
  cutoffLen: number;
  loraR: number;
  loraTargetModules: readonly Projection[];
  /** lora (default), full or freeze (with its layers and modules); fullFinetune: true is full. */
  finetuningType?: FinetuningType;
  fullFinetune?: boolean;
  /** DoRA: magnitudes, their factors and each target's saved z (activations.ts). */
  useDora?: boolean;
  /** modules_to_save: float32 (V, C) copies of embed_tokens / lm_head, trained beside the frozen base. */
  modulesToSave?: readonly string[];
  freezeTrainableLayers?: number;
  freezeTrainableModules?: readonly string[];
  gradientCheckpointing: boolean;
  /** --packing: micro-batches of microBatchSize rows of cutoff_len, with segment ids and per-token RoPE tables. */
  packing?: boolean;
  activationDtype: ActivationDTypeChoice;
  quantization: Partial<QuantizationOptions>;
  /** The stored dtype of a config.json alone's weights (default its torch_dtype, else float32). */
  weightDtype?: 'f32' | 'bf16' | 'f16';
  /** The vocabulary after --new_special_tokens, when larger than config.json's: embedding, head, logits and copies grow. */
  vocabSize?: number;
}

const STORAGE: Record<string, StorageDType> = { f32: 'F32', float32: 'F32', bf16: 'BF16', bfloat16: 'BF16', f16: 'F16', float16: 'F16' };

/** The plan of a run on a model folder (its checkpoint's headers), a config.json alone, or a Hub id (only its config.json is fetched). */
export async function planRun(r: PlanRequest, log: (line: string) => void): Promise<MemoryPlan> {
  const request = bnbConfigOf(r.quantization);
  let config: LlamaConfig, weights: MemoryEstimate, linear: string;
  const isFile = r.baseModel.endsWith('.json') && existsSync(r.baseModel) && statSync(r.baseModel).isFile();
  const dir = isFile ? null : await resolveModelConfigDir(r.baseModel, log);
  if (dir && modelFiles(readdirSync(dir)).some((f) => /\.(safetensors|bin)$/.test(f))) {
    if (r.weightDtype) throw new UserError(`--weight_dtype applies to a config.json alone; ${r.baseModel} holds weights, whose stored dtype is used`);
    config = loadLlamaConfig(dir, { flag: '--base_model' });
    const summary = await inspectModel(dir, request);
    weights = summary.memory[request && !summary.quantization ? 1 : 0]!;
    linear = request || summary.quantization ? 'quantized' : summary.groups.find((g) => g.name === 'attention')!.storedAs[0]!;
  } else {
    config = isFile ? parseLlamaConfig(JSON.parse(readFileSync(r.baseModel, 'utf8')), r.baseModel) : loadLlamaConfig(dir!, { flag: '--base_model' });
    const stored = STORAGE[r.weightDtype ?? config.torchDtype ?? 'float32'] ?? 'F32';
    weights = estimateWeightMemory(config, stored, request);
    linear = request ? 'quantized' : stored.toLowerCase();
  }
  if (r.vocabSize && r.vocabSize > config.vocabSize) [config, weights] = grownVocabulary(config, weights, r.vocabSize);
  const type = r.fullFinetune ? 'full' : r.finetuningType ?? 'lora';
  if (type !== 'lora' && request) throw new UserError(`--finetuning_type ${type} trains base weights; a quantized base is frozen: drop --load_in_4bit/--load_in_8bit`);
  const trains = type === 'freeze' ? freezeSelection(config.numLayers, r.freezeTrainableLayers ?? 2, r.freezeTrainableModules ?? ['all']) : null;
  return planMemory(config, weights, {
    backend: r.backend,
    microBatchSize: r.microBatchSize,
    seqLen: Math.ceil(r.cutoffLen / 8) * 8,
    lora: type === 'lora' ? { targets: r.loraTargetModules, r: r.loraR, dora: r.useDora ?? false, modulesToSave: r.modulesToSave?.length ?? 0 } : null,
    ...(trains ? { trainableWeights: expectedWeights(config).map((w) => w.name).filter(trains) } : {}),
    checkpointing: r.gradientCheckpointing,
    packed: r.packing ?? false,
    activationDtype: activationDtypeFor(r.activationDtype, r.backend, linear === 'bf16' ? 'bf16' : 'f32'),
  });
}

/** The config and weight bytes after --new_special_tokens grows the embedding and head (bytes per parameter kept). */
function grownVocabulary(config: LlamaConfig, weights: MemoryEstimate, vocabSize: number): [LlamaConfig, MemoryEstimate] {
  const count = (c: LlamaConfig) => expectedWeights(c).reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
  const grown = { ...config, vocabSize };
  const scale = count(grown) / count(config);
  return [grown, { ...weights, js: weights.js * scale, cpu: weights.cpu * scale, cuda: weights.cuda === null ? null : weights.cuda * scale }];
}

const gib = (n: number) => (n / GIB).toFixed(2);

/** One line, for the start of a run. */
export function describePlan(p: MemoryPlan): string {
  const measure = p.settings.backend === 'cuda' ? 'device memory' : 'peak RSS';
  const base = p.baseline ? ` + process ${gib(p.baseline)}` : '';
  return `memory plan (${p.settings.backend} ${measure}): ${gib(p.total)} GiB = weights ${gib(p.weights)} + trainable ${gib(p.trainable)} + ` +
    `activations ${gib(p.activations)} (${p.settings.activationDtype}) + workspace ${gib(p.workspace)}${base}`;
}

/** The plan as a table, for `alpaca-lora plan`. */
export function renderPlan(p: MemoryPlan): string {
  const s = p.settings;
  const what = s.lora ? `${s.lora.dora ? 'DoRA' : 'LoRA'} [${s.lora.targets.join(', ')}] r${s.lora.r}` : s.trainableWeights ? `freeze (${s.trainableWeights.length} weights train)` : 'full fine-tuning';
  const rows: [string, number, string][] = [
    ['weights', p.weights, s.lora ? 'the base, frozen' : s.trainableWeights ? 'the frozen part of the base' : 'in the trainable masters'],
    ['trainable', p.trainable, 'float32 parameters, gradients, AdamW moments'],
    ['activations', p.activations, `${s.activationDtype}${s.checkpointing ? ', each layer\'s input only (checkpointing)' : ''}`],
    ['workspace', p.workspace, s.backend === 'cuda' ? 'cuBLASLt, bf16 input copies, attention' : 'the larger of loading\'s host copy and the kernels\' scratch'],
    ...(p.baseline ? [['process', p.baseline, 'node, the CLI and the addon'] as [string, number, string]] : []),
  ];
  return [
    `${s.backend}, micro batch ${s.microBatchSize} x ${s.seqLen} tokens, ${what}`,
    ...rows.map(([name, bytes, note]) => `  ${name.padEnd(12)} ${gib(bytes).padStart(8)} GiB  ${note}`),
    `  ${'total'.padEnd(12)} ${gib(p.total).padStart(8)} GiB  predicted ${s.backend === 'cuda' ? 'device memory' : 'peak RSS'}`,
  ].join('\n');
}

/** The plan as `--json` prints it (GiB). */
export function planJson(p: MemoryPlan): Record<string, number | string> {
  const g = (n: number) => Number((n / GIB).toFixed(3));
  return {
    total_gib: g(p.total), weights_gib: g(p.weights), trainable_gib: g(p.trainable), activations_gib: g(p.activations),
    workspace_gib: g(p.workspace), baseline_gib: g(p.baseline), backend: p.settings.backend,
  };
}
