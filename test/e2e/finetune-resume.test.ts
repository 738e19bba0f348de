// Stopping and resuming: a run resumed from checkpoint-N logs the same losses, grad norms and eval losses
// as the uninterrupted run (with dropout and shuffling on), and ends with the same adapter bytes.
// Ctrl-C saves a checkpoint and exits 130; kill -9 at any moment leaves only complete checkpoints.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadLlamaConfig } from '../../src/arch/llama-config.ts';
import { JsBackend } from '../../src/backends/js/index.ts';
import { EXAMPLE_DATA, writeExampleModel } from '../../src/example/run-example.ts';
import { checkAdapterFitsBase, readPeftAdapter } from '../../src/formats/peft-adapter.ts';
import { listCheckpoints, readCheckpoint } from '../../src/train/checkpoint/checkpoint.ts';
import { finetune, type FinetuneInput } from '../../src/train/finetune.ts';
import type { LogEntry } from '../../src/train/loop.ts';
import { PROJECT_ROOT } from '../helpers/shared.ts';

const work = mkdtempSync(join(tmpdir(), 'finetune-resume-'));
const base = join(work, 'base');
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

const recipe = (outputDir: string, extra: Partial<FinetuneInput> = {}): FinetuneInput => ({
  baseModel: base, dataPath: EXAMPLE_DATA, outputDir, backend: new JsBackend(), batchSize: 4, microBatchSize: 2, maxSteps: 6,
  learningRate: 1e-2, warmupSteps: 2, valSetSize: 8, evalSteps: 3, saveSteps: 3, loggingSteps: 1, loraDropout: 0.1,
  loraTargetModules: ['q_proj', 'v_proj', 'down_proj'], cutoffLen: 64, trainOnInputs: false, progress: false, log: () => {},
  ...extra,
});

const withoutSpeed = (h: LogEntry[]) => h.map((e) => (e.kind === 'train' ? { ...e, tokens_per_second: 0, peak_memory_gib: 0 } : e));

test('resuming from checkpoint-3 gives the uninterrupted run\'s losses step for step', async () => {
  await writeExampleModel(base, () => {});
  const whole = await finetune(recipe(join(work, 'whole')));
  const resumed = await finetune(recipe(join(work, 'resumed'), { resumeFromCheckpoint: join(work, 'whole', 'checkpoint-3') }));
  assert.equal(whole.steps, 6);
  assert.deepEqual(withoutSpeed(resumed.history), withoutSpeed(whole.history));
  assert.ok(whole.history.filter((e) => e.kind === 'eval').length >= 3);
  const bytes = (dir: string) => readFileSync(join(dir, 'adapter_model.safetensors'));
  assert.ok(bytes(join(work, 'whole')).equals(bytes(join(work, 'resumed'))), 'the final adapters differ');

  const state = readCheckpoint(join(work, 'whole', 'checkpoint-3')).state;
  assert.equal(state.global_step, 3);
  assert.deepEqual(state.data_position, { epoch: 0, step_in_epoch: 3, micro_batches_done: 6, order: 'shuffle' });

  await assert.rejects(
    finetune(recipe(join(work, 'other'), { learningRate: 2e-2, resumeFromCheckpoint: join(work, 'whole', 'checkpoint-3') })),
    /learning_rate 0\.01 there, 0\.02 now/,
  );
});

function cli(args: string[]): { child: ReturnType<typeof spawn>; lines: string[]; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'alpaca-lora.js'), 'finetune', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buffered = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
    child.emit('lines');
  });
  child.stderr!.resume();
  return { child, lines, exit: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
}

const cliRecipe = (out: string) => [
  '--base_model', base, '--data_path', EXAMPLE_DATA, '--output_dir', out, '--backend', 'js', '--batch_size', '4',
  '--micro_batch_size', '2', '--max_steps', '40', '--val_set_size', '0', '--logging_steps', '1', '--cutoff_len', '64', '--progress', 'false',
];

function waitForLine(run: ReturnType<typeof cli>, pattern: RegExp): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (run.lines.some((l) => pattern.test(l))) {
        run.child.off('lines', check);
        resolve();
      }
    };
    run.child.on('lines', check);
  });
}

test('Ctrl-C finishes the step, saves a checkpoint, exits 130, and the run resumes from it', async () => {
  await writeExampleModel(base, () => {});
  const out = join(work, 'interrupted');
  const run = cli([...cliRecipe(out), '--save_steps', '0']);
  await waitForLine(run, /^step 3\//);
  run.child.kill('SIGINT');
  assert.equal(await run.exit, 130);
  const stopped = run.lines.find((l) => l.startsWith('stopped at step'));
  assert.ok(stopped, run.lines.join('\n'));
  const step = Number(/stopped at step (\d+)/.exec(stopped)![1]);
  assert.deepEqual(listCheckpoints(out).map((c) => c.step), [step]);
  const result = await finetune({
    baseModel: base, dataPath: EXAMPLE_DATA, outputDir: out, backend: new JsBackend(), batchSize: 4, microBatchSize: 2, maxSteps: 40,
    valSetSize: 0, loggingSteps: 1, saveSteps: 0, cutoffLen: 64, resumeFromCheckpoint: out, progress: false, log: () => {},
  });
  assert.equal(result.steps, 40);
  assert.equal(result.history.filter((e) => e.kind === 'train').length, 40);
});

test('kill -9 at any moment leaves only complete, loadable checkpoints', async () => {
  await writeExampleModel(base, () => {});
  const out = join(work, 'killed');
  const config = loadLlamaConfig(base);
  for (const delayMs of [0, 3, 7, 15, 30]) {
    const run = cli([...cliRecipe(out), '--save_steps', '1', '--save_total_limit', '2', ...(listCheckpoints(out).length ? ['--resume_from_checkpoint', out] : [])]);
    await waitForLine(run, /^saved .*checkpoint-/);
    await new Promise((r) => setTimeout(r, delayMs));
    run.child.kill('SIGKILL');
    await run.exit;
    const checkpoints = listCheckpoints(out);
    assert.ok(checkpoints.length >= 1);
    for (const c of checkpoints) {
      const { state, optimizer } = readCheckpoint(c.dir);
      assert.equal(state.global_step, c.step);
      assert.ok(optimizer.size > 0);
      checkAdapterFitsBase(readPeftAdapter(c.dir), config, c.dir);
    }
  }
});
