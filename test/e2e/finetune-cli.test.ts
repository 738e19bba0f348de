// `alpaca-lora finetune` as a user runs it: the built-in example end to end, a diverging run stopped with
// a message, --packing against the same run unpacked, and bad flags or config files refused before anything is written.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../helpers/shared.ts';

const work = mkdtempSync(join(tmpdir(), 'finetune-cli-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const example = join(work, 'example');

function finetune(...args: string[]) {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'alpaca-lora.js'), 'finetune', ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the built-in example makes its model and data, trains, saves a verified adapter and answers', () => {
  const r = finetune('--example', '--output_dir', example, '--num_epochs', '1', '--backend', 'js', '--progress', 'false');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /wrote a tiny LLaMA/);
  assert.match(r.stdout, /^trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%: [\d.]+$/m);
  assert.match(r.stdout, /saved the adapter to .* \(adapter_config\.json, adapter_model\.safetensors; verified\)/);
  assert.equal((r.stdout.match(/^### Response:/gm) ?? []).length, 3);
  for (const f of ['tiny-llama/config.json', 'tiny-llama/model.safetensors', 'tiny-llama/tokenizer.json', 'instructions.json',
    'lora/adapter_config.json', 'lora/adapter_model.safetensors', 'lora/metrics.jsonl', 'lora/report.html']) {
    assert.ok(existsSync(join(example, f)), `${f} is missing`);
  }
  const metrics = readFileSync(join(example, 'lora', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(metrics.filter((m) => m.kind === 'eval').map((m) => m.step), [0, 18]);
  const report = readFileSync(join(example, 'lora', 'report.html'), 'utf8');
  assert.match(report, /data-reload="0"/, 'a finished run\'s report does not reload');
  for (const fact of ['started', 'duration', 'backend', 'model', 'data', 'tokens seen', 'average tokens/s', 'peak memory']) assert.ok(report.includes(`<div class="k">${fact}</div>`), fact);
  // The next commands it prints name the example's paths, and the first one runs as printed.
  const next = r.stdout.slice(r.stdout.indexOf('next, try:'));
  assert.match(next, new RegExp(`npx alpaca-lora serve --base_model ${join(example, 'tiny-llama')} --lora_weights ${join(example, 'lora')}`));
  const generate = /npx alpaca-lora (generate .* --instruction '[^']*')/.exec(next)?.[1];
  assert.ok(generate, next);
  const g = spawnSync('sh', ['-c', `"${process.execPath}" "${join(PROJECT_ROOT, 'bin', 'alpaca-lora.js')}" ${generate} --backend js --num_beams 1 --max_new_tokens 8`], { encoding: 'utf8' });
  assert.equal(g.status, 0, g.stderr);
  assert.ok(g.stdout.trim().length > 0, 'generate printed an answer');
});

test('a run whose loss turns NaN stops naming the step and saves no adapter', () => {
  const out = join(work, 'nan');
  const r = finetune('--base_model', join(example, 'tiny-llama'), '--data_path', join(example, 'instructions.json'), '--output_dir', out,
    '--learning_rate', '1e6', '--warmup_steps', '0', '--max_steps', '8', '--batch_size', '4', '--micro_batch_size', '4',
    '--val_set_size', '0', '--lora_target_modules', '[q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj]', '--backend', 'js');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^error: step \d: the loss is .* training diverged and stopped; .* lower --learning_rate/m);
  assert.ok(!existsSync(join(out, 'adapter_model.safetensors')));
});

test('finetune --packing trains on packed rows with the loss, gradient norm and eval loss of the unpacked run', () => {
  // Prompts masked (--train_on_inputs false) and no dropout, so the two runs see the same targets (data/pack.ts).
  const run = (packing: boolean) => {
    const out = join(work, `packing-${packing}`);
    const r = finetune('--base_model', join(example, 'tiny-llama'), '--data_path', join(example, 'instructions.json'), '--output_dir', out,
      '--max_steps', '3', '--batch_size', '8', '--micro_batch_size', '2', '--val_set_size', '4', '--eval_steps', '3', '--save_steps', '3',
      '--logging_steps', '1', '--lora_dropout', '0', '--warmup_steps', '0', '--train_on_inputs', 'false', '--packing', String(packing),
      '--backend', 'js', '--progress', 'false');
    assert.equal(r.status, 0, r.stderr);
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    return { stdout: r.stdout, train: lines.filter((m) => m.kind === 'train'), evals: lines.filter((m) => m.kind === 'eval') };
  };
  const plain = run(false), packed = run(true);
  assert.match(packed.stdout, /^packing: each step's 8 examples packed into rows of 256 tokens, 2 rows per micro-batch; evaluation unpacked$/m);
  assert.doesNotMatch(plain.stdout, /^packing: each/m);
  assert.equal(packed.train.length, 3);
  const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-5 * Math.abs(b), `${what}: packed ${a} vs unpacked ${b}`);
  packed.train.forEach((m, i) => {
    close(m.loss, plain.train[i].loss, `step ${m.step} loss`);
    close(m.grad_norm, plain.train[i].grad_norm, `step ${m.step} grad_norm`);
  });
  close(packed.evals.at(-1).eval_loss, plain.evals.at(-1).eval_loss, 'eval_loss after 3 steps');
});

test('bad flags and config files are refused by name, before anything is written', () => {
  const out = join(work, 'refused');
  const base = ['--base_model', join(example, 'tiny-llama'), '--output_dir', out, '--backend', 'js'];
  const data = ['--data_path', join(example, 'instructions.json')];
  const cases: [string[], RegExp][] = [
    [['--micro_batch_size', '0'], /--micro_batch_size must be a positive integer, got 0/],
    [['--lora_target_modules', '[q_proj,wq]'], /--lora_target_modules: LoRA target "wq" is not one of q_proj/],
    [['--lr_scheduler', 'steps'], /--lr_scheduler must be one of linear, cosine, constant/],
    [['--data_path', join(work, 'missing.json')], /--data_path .*missing\.json does not exist/],
  ];
  for (const [args, message] of cases) {
    const r = finetune(...base, ...(args.includes('--data_path') ? [] : data), ...args);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr, message);
  }
  const yaml = join(work, 'bad.yaml');
  writeFileSync(yaml, 'num_epochs: 2\nlora_rnak: 4\n');
  const r = finetune(...base, ...data, '--config', yaml);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`--config ${yaml} has keys finetune does not know .*\n {2}lora_rnak: not a setting of finetune; did you mean lora_rank\\?`));
  assert.ok(!existsSync(out));
});

test('--config sets flags from YAML; the command line wins', () => {
  const out = join(work, 'configured');
  const yaml = join(work, 'run.yaml');
  writeFileSync(yaml, `base-model: ${join(example, 'tiny-llama')}\ndata_path: ${join(example, 'instructions.json')}\n` +
    'lora_target_modules: [q_proj, k_proj]\nlora_r: 4\nmax_steps: 2\nval_set_size: 0\nbatch_size: 4\nmicro_batch_size: 2\n');
  const r = finetune('--config', yaml, '--output_dir', out, '--lora_r', '2', '--backend', 'js');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^lora_r: 2$/m);
  assert.match(r.stdout, /^lora_target_modules: \[q_proj, k_proj\]$/m);
  assert.match(r.stdout, /^gradient_accumulation_steps: 2$/m);
  assert.equal(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')).r, 2);
});
