// Fine-tuning quality against the reference stack: ../shared/fixtures/pretrained/tiny-english (a LLaMA that
// has learned English) on llamafactory_alpaca_en_demo.json with a recipe of finetune_quality_reference.json
// (records 0-99 evaluate, 100-998 train; 8 x 2; 3 epochs = 168 steps; warmup 16; eval every 20 steps): LoRA r=8
// alpha=16 dropout 0.05 on q,v at lr 3e-3, or with --finetuning_type full every weight at lr 3e-4 (float32 masters).
// Prints our eval curve beside the reference's and writes JSON.
//   node --import tsx bench/finetune-quality.ts [--backend auto|js|cpu|cuda] [--finetuning_type lora|full] [--max_steps N]
//                                               [--out FILE] [--load_in_4bit (NF4 + double quant) | --load_in_8bit]
//                                               [--compute_dtype f32|bf16]

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '../src/backends/select.ts';
import { finetune } from '../src/train/finetune.ts';
import type { EvalLog } from '../src/train/loop.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const shared = process.env.ALPACA_SHARED_DIR ?? resolve(root, '..', 'shared');
const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'auto' }, max_steps: { type: 'string', default: '0' }, finetuning_type: { type: 'string', default: 'lora' },
    out: { type: 'string' },
    load_in_4bit: { type: 'boolean', default: false }, load_in_8bit: { type: 'boolean', default: false },
    compute_dtype: { type: 'string', default: 'f32' },
  },
});
const quantization = values.load_in_4bit ? { loadIn4bit: true, bnb4bitUseDoubleQuant: true } : { loadIn8bit: values.load_in_8bit };
const base = values.load_in_4bit ? 'NF4 + double quant' : values.load_in_8bit ? 'LLM.int8' : 'bf16';

const reference = JSON.parse(readFileSync(join(shared, 'fixtures', 'pretrained', 'finetune_quality_reference.json'), 'utf8'));
const kind = values.finetuning_type === 'full' ? 'full' : 'lora';
const run = reference.runs.find((r: { kind: string }) => r.kind === kind);
const out = values.out ?? join(root, 'bench', 'results', kind === 'full' ? 'finetune-quality-full.json' : 'finetune-quality.json');
const records = JSON.parse(readFileSync(join(shared, 'data', 'llamafactory_alpaca_en_demo.json'), 'utf8')) as unknown[];
const work = mkdtempSync(join(tmpdir(), 'finetune-quality-'));
writeFileSync(join(work, 'val.json'), JSON.stringify(records.slice(0, 100)));
writeFileSync(join(work, 'train.json'), JSON.stringify(records.slice(100)));

const started = performance.now();
const result = await finetune({
  baseModel: join(shared, 'fixtures', 'pretrained', 'tiny-english'),
  dataPath: join(work, 'train.json'), valDataPath: join(work, 'val.json'), outputDir: join(work, 'out'),
  backend: selectBackend(values.backend as string), promptTemplateName: 'alpaca', trainOnInputs: false, cutoffLen: 256,
  batchSize: run.micro_batch * run.grad_accum, microBatchSize: run.micro_batch, numEpochs: run.epochs, maxSteps: Number(values.max_steps),
  learningRate: run.lr, warmupSteps: run.warmup, maxGradNorm: 1.0, finetuningType: kind, loraR: 8, loraAlpha: 16, loraDropout: 0.05,
  loraTargetModules: ['q_proj', 'v_proj'], evalSteps: 20, saveSteps: 0, loggingSteps: 10, loadBestModelAtEnd: false, seed: 42,
  progress: process.stderr.isTTY === true, quantization, computeDtype: values.compute_dtype as 'f32' | 'bf16',
});
const seconds = (performance.now() - started) / 1000;

const ours = new Map(result.history.filter((e): e is EvalLog => e.kind === 'eval').map((e) => [e.step, e.eval_loss]));
console.log('\nstep   ours     reference  difference');
for (const { step, eval_loss: ref } of run.history as { step: number; eval_loss: number }[]) {
  const v = ours.get(step);
  console.log(`${String(step).padStart(4)}   ${v?.toFixed(4) ?? '   -  '}   ${ref.toFixed(4)}     ${v === undefined ? '' : (v - ref).toFixed(4)}`);
}
const final = result.evalLoss!;
const target = run.history.at(-1).eval_loss as number;
console.log(`final eval loss ${final.toFixed(4)} vs reference ${target.toFixed(4)} (difference ${(final - target).toFixed(4)}; the bar is 0.03) in ${(seconds / 60).toFixed(1)} min`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({
  compute_dtype: values.compute_dtype, recipe: `${kind === 'full' ? 'full fine-tuning (every weight, float32 masters); lr 3e-4' : 'lora r=8 alpha=16 dropout 0.05 q,v; lr 3e-3'}; micro 8 x accumulation 2; 3 epochs; warmup 16; linear; clip 1.0`, base,
  backend: result.model.be.name, cpu: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'}`, load_average_1m: loadavg()[0],
  steps: result.steps, seconds, final_eval_loss: final, reference_final_eval_loss: target, difference: final - target,
  curve: [...ours].map(([step, loss]) => ({ step, eval_loss: loss })), reference_curve: run.history,
}, null, 1) + '\n');
rmSync(work, { recursive: true, force: true });
process.exit(0);
