// Benchmark: LoRA training tokens/s and peak RSS, cpu backend vs js vs a hand-written PyTorch step
// (torch_lora_step.py), on random weights of bench/shapes.ts; prints a table last and writes JSON.

// Each case runs in its own process (lora-train-case.ts) so its peak RSS is its own.
//   node --import tsx bench/cpu-backend.ts [--shapes a,b] [--backends js,cpu,torch] [--weights f32,bf16]
//                                          [--steps 5] [--warmup 2] [--mb 4] [--seq 256] [--checkpointing]
//                                          [--activation_dtypes auto,f32,bf16] [--compute_dtypes f32,bf16]
//                                          [--threads 1,2,...] [--rounds 1]
//                                          [--json out/bench/cpu-backend.json]
// js is ~100x slower, so it runs a micro batch of 1 x 64 tokens (one step after one warm-up); torch (a
// slow Debian build here) runs at most 3 steps after one warm-up. --threads: each count in turn for cpu and torch
// (default: ALPACA_CPU_THREADS, else every CPU). --rounds n: every case n times, interleaved (cpu and torch
// alternate), each case's fastest round reported: on a shared machine both sides get the same chance.
// --activation_dtypes auto (the default) is what finetune picks: bf16 activations for bf16 weights on cpu.

import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flag } from './flags.ts';
import { machine } from './machine.ts';
import { SHAPES, type TrainCase } from './shapes.ts';

const here = dirname(fileURLToPath(import.meta.url));
const shapes = flag('shapes', Object.keys(SHAPES).join(',')).split(',');
const backends = flag('backends', 'js,cpu,torch').split(',');
const weights = flag('weights', 'f32,bf16').split(',') as TrainCase['weightDtype'][];
const steps = Number(flag('steps', '5')), warmup = Number(flag('warmup', '2'));
const mb = Number(flag('mb', '4')), seq = Number(flag('seq', '256')), checkpointing = process.argv.includes('--checkpointing');
const activationDtypes = flag('activation_dtypes', 'auto').split(',') as NonNullable<TrainCase['activationDtype']>[];
const computeDtypes = flag('compute_dtypes', 'f32').split(',') as NonNullable<TrainCase['computeDtype']>[]; // bf16: bf16 weights only
const jsonPath = resolve(flag('json', resolve(here, '..', 'out', 'bench', 'cpu-backend.json')));
// The first of these whose python imports torch (Debian's python3-torch lives under /usr/bin/python3).
const pythons = process.env.PYTHON ? [process.env.PYTHON] : ['python3', '/usr/bin/python3'];
const threadCounts = flag('threads', process.env.ALPACA_CPU_THREADS ?? String(availableParallelism())).split(',').map(Number);
const rounds = Number(flag('rounds', '1'));
const host = machine();

interface Result extends TrainCase {
  threads: number;
  details: string;
  tokens_per_s: number;
  step_s: number;
  peak_rss_gib: number;
  loss?: number;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): { result?: Result; error?: string } {
  const p = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 1 << 24 });
  const line = p.stdout?.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (p.status === 0 && line) return { result: JSON.parse(line) as Result };
  return { error: (p.error?.message ?? p.stderr?.trim().split('\n').slice(-3).join(' ')) || `exit ${p.status}` };
}

const python = pythons.find((py) => spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0);

const results: Result[] = [];
const skipped: string[] = [];
if (backends.includes('torch') && !python) skipped.push(`torch: none of ${pythons.join(', ')} imports torch (Debian: apt-get install python3-torch; or set PYTHON)`);

const cases: (TrainCase & { threads: number })[] = [];
for (const shape of shapes) {
  if (!SHAPES[shape]) throw new Error(`unknown shape ${shape}; known: ${Object.keys(SHAPES).join(', ')}`);
  for (const backend of backends as TrainCase['backend'][]) {
    if (backend === 'js') cases.push({ shape, backend, weightDtype: 'f32', mb: 1, seq: 64, warmup: 1, steps: 1, threads: 1 });
    for (const threads of backend === 'js' ? [] : threadCounts) {
      if (backend === 'cpu') {
        for (const w of weights) {
          for (const a of activationDtypes) {
            for (const cd of w === 'bf16' ? computeDtypes : ['f32' as const]) {
              cases.push({ shape, backend, weightDtype: w, mb, seq, warmup, steps, checkpointing, activationDtype: a, computeDtype: cd, threads });
            }
          }
        }
      } else if (backend === 'torch' && python) {
        cases.push({ shape, backend, weightDtype: 'f32', mb, seq, warmup: 1, steps: Math.min(steps, 3), threads });
      }
    }
  }
}

const sameCase = (a: TrainCase & { threads: number }, b: TrainCase & { threads: number }) => a.shape === b.shape && a.backend === b.backend &&
  a.weightDtype === b.weightDtype && a.activationDtype === b.activationDtype && a.computeDtype === b.computeDtype && a.threads === b.threads;
for (let round = 0; round < rounds; round++) {
  for (const c of cases) {
    if (c.backend === 'js' && round > 0) continue;
    console.error(`round ${round + 1}/${rounds}: ${c.shape} on ${c.backend} (${c.weightDtype} weights, ${c.mb} x ${c.seq}, ${c.threads} threads) ...`);
    // OMP_WAIT_POLICY=PASSIVE: torch's OpenMP threads otherwise spin against OpenBLAS's own (measured faster).
    const { result, error } = c.backend === 'torch'
      ? run(python!, [resolve(here, 'torch_lora_step.py'), JSON.stringify({ ...c, hf: SHAPES[c.shape]!.hf })], { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' })
      : run(process.execPath, ['--import', 'tsx', resolve(here, 'lora-train-case.ts'), JSON.stringify(c)], { ...process.env, ALPACA_CPU_THREADS: String(c.threads) });
    if (result) {
      const r = { ...result, threads: c.threads };
      const i = results.findIndex((o) => sameCase(o, r));
      if (i < 0) results.push(r);
      else if (r.tokens_per_s > results[i]!.tokens_per_s) results[i] = r;
      console.error(`  ${result.tokens_per_s} tokens/s, ${result.step_s} s/step, peak RSS ${result.peak_rss_gib} GiB (${result.details})`);
    } else {
      skipped.push(`${c.shape} ${c.backend} ${c.threads} threads: ${error}`);
      console.error(`  failed: ${error}`);
    }
  }
}

const speed = (shape: string, backend: string, threads: number) => results.find((r) => r.shape === shape && r.backend === backend && r.weightDtype === 'f32' && (backend === 'js' || r.threads === threads))?.tokens_per_s;
const ratio = (a?: number, b?: number) => (a && b ? `${(a / b).toFixed(2)}x` : '-');
mkdirSync(dirname(jsonPath), { recursive: true });
writeFileSync(jsonPath, JSON.stringify({ machine: host, threads: threadCounts, rounds, results, skipped }, null, 2) + '\n');

const rows = results.map((r) => [
  r.shape, r.backend, r.weightDtype, String(r.threads), `${r.mb} x ${r.seq}${r.checkpointing ? ' ckpt' : ''}${r.activationDtype && r.activationDtype !== 'f32' ? ` ${r.activationDtype} act` : ''}${r.computeDtype === 'bf16' ? ' bf16 compute' : ''}`, r.tokens_per_s.toFixed(1), r.step_s.toFixed(3), r.peak_rss_gib.toFixed(2),
  r.backend === 'cpu' ? ratio(r.tokens_per_s, speed(r.shape, 'torch', r.threads)) : '-',
  r.backend === 'cpu' ? ratio(r.tokens_per_s, speed(r.shape, 'js', r.threads)) : '-',
]);
const head = ['shape', 'backend', 'weights', 'threads', 'batch', 'tokens/s', 's/step', 'peak RSS GiB', 'vs torch', 'vs js'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log(`\nLoRA training (q,v r=8, dropout 0.05; AdamW + clip 1.0), best of ${rounds} round(s) per case; ${host}; JSON: ${jsonPath}`);
for (const s of skipped) console.log(`skipped: ${s}`);
console.log([line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n'));
