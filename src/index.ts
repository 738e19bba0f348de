// The library API: what `import { … } from 'alpaca-lora-ts'` offers. Each command of the CLI is one of
// these calls plus flag parsing; lower-level pieces (formats, backends, the model) are exported too.

export { selectBackend, type BackendName } from './backends/select.ts';
export type { Backend } from './engine/backend.ts';
export { UserError } from './errors.ts';

export { loadLlamaConfig, parseLlamaConfig, type LlamaConfig } from './arch/llama-config.ts';
export { loadModel, type LoadOptions } from './model/load.ts';
export { inspectModel, type ModelSummary } from './model/inspect.ts';
export { bnbConfigOf, QUANTIZATION_DEFAULTS, type QuantizationOptions } from './model/quantization-options.ts';
export type { Model } from './model/llama.ts';
export { scoreBatch, forwardBackward } from './model/compute.ts';
export { loadLoraAdapter, loadAdapterOnto, adapterToTensors } from './model/lora-io.ts';
export { resizeVocab } from './model/resize-vocab.ts';
export { createLoraAdapter, initLoraAdapter, loraParameters, type LoraAdapter, type LoraSettings } from './model/lora.ts';
export { mergeLora, unmergeLora } from './model/merge.ts';
export { enableFullFinetune } from './model/full-finetune.ts';

export { loadTokenizer, loadTokenizerWith } from './tokenizer/load.ts';
export type { Tokenizer } from './tokenizer/tokenizer.ts';
export { Prompter, loadTemplate } from './data/prompter.ts';
export { loadDataset } from './data/dataset.ts';

export { finetune, type FinetuneInput, type FinetuneResult } from './train/finetune.ts';
export { score, type ScoreOptions, type ScoreResult } from './api/score.ts';
export { loadRuntime, type Runtime, type RuntimeOptions } from './generate/runtime.ts';
export { generate } from './generate/generate.ts';
export { generateText } from './generate/text.ts';
export { startServer } from './server/server.ts';
export { exportHf } from './export/export-hf.ts';
export { exportStateDict } from './export/export-state-dict.ts';
export { exportGguf } from './export/export-gguf.ts';

export { readSafetensors, SafetensorsFile } from './formats/safetensors.ts';
export { writeSafetensors, writeShardedSafetensors } from './formats/safetensors-write.ts';
export { openCheckpoint } from './formats/hf-checkpoint.ts';
export { readPeftAdapter, writePeftAdapter } from './formats/peft-adapter.ts';
export { readTorchFile } from './formats/torch-pickle.ts';
