// Data-parallel fine-tuning under mpirun (2 processes on this machine, js backend for bit-stable arithmetic):
// the same command run by 2 ranks is the same run as 1 process (the seed's torchrun rule: the global batch
// stays batch_size, micro-batches are dealt out among the ranks); a killed rank ends the job, and its last
// checkpoint resumes with 1 process; a batch that does not split among the ranks is refused.
// Tolerance: float32 gradients summed in another order (2 partial sums, then their sum) — 1e-6 relative.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EXAMPLE_DATA, writeExampleModel } from '../../src/example/run-example.ts';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { runCli } from '../helpers/cli.ts';
import { mpiEnv, needMpi } from '../helpers/mpi.ts';
import { PROJECT_ROOT } from '../helpers/shared.ts';

const work = mkdtempSync(join(tmpdir(), 'finetune-dp-'));
const base = join(work, 'base');
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

const RECIPE: Record<string, string> = {
  base_model: base, data_path: EXAMPLE_DATA, backend: 'js', batch_size: '8', micro_batch_size: '2', max_steps: '4', learning_rate: '1e-2',
  warmup_steps: '1', val_set_size: '8', eval_steps: '2', logging_steps: '1', cutoff_len: '64', lora_dropout: '0.1', progress: 'false',
};

const recipe = (out: string, changes: Record<string, string> = {}) =>
  ['finetune', ...Object.entries({ ...RECIPE, output_dir: out, ...changes }).flatMap(([k, v]) => [`--${k}`, v])];

const trainLogs = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.kind === 'train');

function close(a: number, b: number, what: string): void {
  assert.ok(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
}

test('2 ranks × 2 micro-batches per step train the same run as 1 process × 4', async (t) => {
  if (!needMpi(t)) return;
  await writeExampleModel(base, () => {});
  const one = runCli(recipe(join(work, 'one')), { timeoutMs: 300_000 });
  assert.equal(one.status, 0, one.stderr);
  const two = runCli(recipe(join(work, 'two'), { nproc_per_node: '2' }), { env: mpiEnv() as Record<string, string>, timeoutMs: 300_000 });
  assert.equal(two.status, 0, two.stderr);
  assert.match(two.stdout, /data parallel: 2 processes, micro-batches dealt out in turn \(2 per process per step\)/);
  assert.equal(two.stdout.match(/^trainable params/gm)?.length, 1, 'only rank 0 logs');

  const [a, b] = [trainLogs(join(work, 'one')), trainLogs(join(work, 'two'))];
  assert.equal(b.length, 4);
  for (let i = 0; i < a.length; i++) {
    close(b[i].loss, a[i].loss, `step ${i + 1} loss`);
    close(b[i].grad_norm, a[i].grad_norm, `step ${i + 1} grad_norm`);
  }
  const weights = (dir: string) => readSafetensors(join(dir, 'adapter_model.safetensors'));
  const [wa, wb] = [weights(join(work, 'one')), weights(join(work, 'two'))];
  assert.deepEqual([...wb.keys()].sort(), [...wa.keys()].sort());
  for (const [name, x] of wa) {
    const y = wb.get(name)!;
    for (let i = 0; i < x.data.length; i++) close(Number(y.data[i]), Number(x.data[i]), `${name}[${i}]`);
  }
});

test('a batch that does not split among the processes is refused before anything starts', () => {
  const r = runCli(['finetune', '--base_model', base, '--batch_size', '6', '--micro_batch_size', '2', '--nproc_per_node', '2']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--batch_size 6 \/ --micro_batch_size 2 = 3 micro-batches per step do not divide among 2 processes: make --batch_size a multiple of 4/);
});

test('a killed rank ends the job, naming the rank; its checkpoint resumes with 1 process', async (t) => {
  if (!needMpi(t)) return;
  if (!existsSync(join(base, 'config.json'))) await writeExampleModel(base, () => {});
  const out = join(work, 'killed');
  const killed = { batch_size: '4', max_steps: '12', val_set_size: '0', save_steps: '2' };
  const args = recipe(out, { ...killed, nproc_per_node: '2' });
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'alpaca-lora.js'), ...args], { env: mpiEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  let code: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve((code = c))));
  while (!existsSync(join(out, 'checkpoint-2'))) {
    assert.equal(code, undefined, `the run ended before its first checkpoint:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const rank1 = ranksOf(child.pid!).find((p) => p.rank === 1);
  assert.ok(rank1, 'rank 1 was not found among mpirun\'s children');
  process.kill(rank1.pid, 'SIGKILL');
  const started = Date.now();
  assert.notEqual(await exited, 0);
  assert.ok(Date.now() - started < 30_000, 'the job outlived its killed rank by more than 30 s');
  assert.match(output, /rank 1 .*(exited on signal 9|Killed)/);

  const resumed = runCli(recipe(out, { ...killed, resume_from_checkpoint: out }), { timeoutMs: 300_000 });
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stdout, /resuming from .*checkpoint-\d+ at step \d+/);
  assert.equal(trainLogs(out).at(-1).step, 12);
});

/** The ranks mpirun started (its children and theirs), with OMPI_COMM_WORLD_RANK read from /proc. */
function ranksOf(launcher: number): { pid: number; rank: number }[] {
  const found: { pid: number; rank: number }[] = [];
  const visit = (pid: number) => {
    let children: number[] = [];
    try {
      children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return;
    }
    for (const c of children) {
      try {
        const rank = readFileSync(`/proc/${c}/environ`, 'utf8').split('\0').find((v) => v.startsWith('OMPI_COMM_WORLD_RANK='));
        if (rank) found.push({ pid: c, rank: Number(rank.split('=')[1]) });
      } catch {
        // the process ended meanwhile
      }
      visit(c);
    }
  };
  visit(launcher);
  return found;
}
