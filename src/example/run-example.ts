// `finetune --example`: the first run, on any CPU in about a minute with nothing downloaded. Makes a tiny
// LLaMA (seeded random weights), a BPE tokenizer learned from the example data and the data file itself,
// fine-tunes a LoRA on all projections, saves it, prints greedy answers from the trained adapter and the
// commands to try next on the same paths.

import { mkdir } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROJECTIONS } from '../arch/projections.ts';
import { Prompter } from '../data/prompter.ts';
import { generate } from '../generate/generate.ts';
import { DEFAULT_OPTIONS } from '../generate/options.ts';
import { finetune, type FinetuneResult } from '../train/finetune.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { FINETUNE_DEFAULTS, type FinetuneOptions } from '../train/finetune-options.ts';
import { learnBpe, writeTokenizer } from './bpe-tokenizer.ts';
import { writeTinyLlama, type TinyLlamaShape } from './tiny-llama.ts';

/** The example's instruction data (80 short records written for this project). */
export const EXAMPLE_DATA = fileURLToPath(new URL('./instructions.json', import.meta.url));
const VOCAB_SIZE = 1024;
const SHAPE: Omit<TinyLlamaShape, 'vocabSize'> = { hiddenSize: 64, intermediateSize: 172, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 256 };
const MODEL_SEED = 1234;

/** The example's recipe, as library options; the CLI lets flags a user passes win over these. */
export const EXAMPLE_RECIPE: Partial<FinetuneOptions> = {
  outputDir: './alpaca-lora-example', // the root: the model, data and adapter go in folders under it
  batchSize: 4,
  microBatchSize: 4,
  numEpochs: 24,
  learningRate: 5e-3,
  warmupSteps: 8,
  cutoffLen: 128,
  valSetSize: 8,
  loraR: 16,
  loraAlpha: 32,
  loraDropout: 0,
  loraTargetModules: [...PROJECTIONS],
  trainOnInputs: false,
  loggingSteps: 24,
  evalSteps: 72,
  saveSteps: 144,
  saveTotalLimit: 1,
  loadBestModelAtEnd: false, // the example shows what the adapter memorised, not the best held-out loss
};

const QUESTIONS: [string, string][] = [
  ['What is the capital of France?', ''],
  ['Give the opposite of the word.', 'hot'],
  ['What sound does a cow make?', ''],
];

/** A path as a shell word: quoted when it holds anything but safe characters. */
const shellWord = (s: string) => (/^[\w./@:+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** The lines that tell a new user what to run next on the example's model and adapter. */
export function nextCommands(baseModel: string, adapterDir: string): string {
  const paths = `--base_model ${shellWord(baseModel)} --lora_weights ${shellWord(adapterDir)}`;
  return [
    'next, try:',
    `  npx alpaca-lora generate ${paths} --instruction ${shellWord(QUESTIONS[0]![0])}   # one answer`,
    `  npx alpaca-lora generate ${paths}   # ask in a loop`,
    `  npx alpaca-lora serve ${paths}   # the web page and API on http://127.0.0.1:7860`,
    `  open ${shellWord(join(adapterDir, 'report.html'))} to see the run's curves`,
  ].join('\n');
}

/** Writes the tiny model (with its tokenizer) into `dir` unless a complete one is there already. */
export async function writeExampleModel(dir: string, log: (line: string) => void): Promise<void> {
  if (['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].every((f) => existsSync(join(dir, f)))) {
    log(`example: using the tiny model in ${dir}`);
    return;
  }
  const prompter = Prompter.load('alpaca');
  const records = JSON.parse(readFileSync(EXAMPLE_DATA, 'utf8')) as { instruction: string; input: string; output: string }[];
  const vocabulary = learnBpe(records.map((r) => prompter.generatePrompt(r.instruction, r.input, r.output)), VOCAB_SIZE);
  const shape = { ...SHAPE, vocabSize: vocabulary.vocab.size };
  await mkdir(dir, { recursive: true });
  await writeTokenizer(dir, vocabulary);
  await writeTinyLlama(dir, shape, MODEL_SEED);
  log(`example: wrote a tiny LLaMA to ${dir} (${shape.numLayers} layers, hidden ${shape.hiddenSize}, vocabulary ${shape.vocabSize} learned from the example data, seeded random weights)`);
}

/**
 * Runs the example with `settings` (FINETUNE_DEFAULTS under EXAMPLE_RECIPE when not given): makes the tiny model and
 * the data under settings.outputDir, trains into its lora/ folder, and prints answers and the next commands.
 */
export async function runExample(settings: FinetuneOptions = { ...FINETUNE_DEFAULTS, baseModel: '', ...EXAMPLE_RECIPE }): Promise<FinetuneResult> {
  const root = settings.outputDir;
  const options = { ...settings, baseModel: join(root, 'tiny-llama'), dataPath: join(root, 'instructions.json'), outputDir: join(root, 'lora') };
  await writeExampleModel(options.baseModel, options.log);
  await writeFileAtomic(options.dataPath, readFileSync(EXAMPLE_DATA));
  const result = await finetune(options);
  if (result.stopped) return result;

  const prompter = Prompter.load(options.promptTemplateName);
  const { model, tokenizer, adapter } = result;
  options.log('\nanswers of the fine-tuned adapter (greedy; the model has learned only these 80 examples):');
  for (const [instruction, input] of QUESTIONS) {
    const prompt = tokenizer.encode(prompter.generatePrompt(instruction, input));
    const [out] = await generate(model, adapter && { adapter, dropout: 0, seed: 0 }, [prompt], {
      ...DEFAULT_OPTIONS, maxNewTokens: 24, eosTokenIds: [tokenizer.eosId], padTokenId: 0,
    });
    const text = tokenizer.decode(out!.tokens, { skipSpecialTokens: true }).trim();
    options.log(`### Instruction: ${instruction}${input ? `\n### Input: ${input}` : ''}\n### Response: ${text}\n`);
  }
  options.log(nextCommands(options.baseModel, options.outputDir));
  return result;
}
