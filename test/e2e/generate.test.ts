// `alpaca-lora generate` run as a user runs it: --prompt_ids on the merged fixture model reproduces
// transformers' greedy and 3-beam ids; --prompt on tiny-english reproduces transformers' greedy text
// (fixtures/generate/pretrain_tiny.py); --instruction on the trainer fixture prints a response (streamed
// too, and from the interactive loop on stdin); bad flags are errors that name the flag.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { needShared, PROJECT_ROOT, sharedPath } from '../helpers/shared.ts';

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  return cliWithInput('', ...args);
}

function cliWithInput(input: string, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'alpaca-lora.js'), 'generate', '--backend', 'js', ...args], { encoding: 'utf8', cwd: PROJECT_ROOT, input });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--prompt_ids prints the greedy and 3-beam ids transformers generates', (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha', 'merged_after3.safetensors')) return;
  const dir = sharedPath('fixtures', 'models', 'llama-mha');
  const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')).generate;
  const merged = mkdtempSync(join(tmpdir(), 'merged-'));
  try {
    copyFileSync(join(dir, 'config.json'), join(merged, 'config.json'));
    symlinkSync(join(dir, 'merged_after3.safetensors'), join(merged, 'model.safetensors'));
    const ids = golden.prompt.join(',');
    const greedy = cli('--base_model', merged, '--prompt_ids', ids, '--temperature', '0', '--num_beams', '1', '--max_new_tokens', '12');
    assert.equal(greedy.code, 0, greedy.stderr);
    assert.deepEqual(JSON.parse(greedy.stdout), golden.greedy.slice(golden.prompt.length));
    const beam = cli('--base_model', merged, '--prompt-ids', `[${ids}]`, '--num-beams', '3', '--max-new-tokens', '12');
    assert.equal(beam.code, 0, beam.stderr);
    assert.deepEqual(JSON.parse(beam.stdout), golden.beam3.slice(golden.prompt.length));
  } finally {
    rmSync(merged, { recursive: true });
  }
});

test('--prompt prints the greedy continuation transformers generated from tiny-english', (t) => {
  if (!needShared(t, 'fixtures', 'pretrained', 'finetune_quality_reference.json')) return;
  // Stored as text: the prompt and its 40 greedy tokens, decoded.
  const golden = JSON.parse(readFileSync(sharedPath('fixtures', 'pretrained', 'finetune_quality_reference.json'), 'utf8')).sample_after_pretraining;
  const base = sharedPath('fixtures', 'pretrained', 'tiny-english');
  const r = cli('--base_model', base, '--prompt', golden.prompt, '--temperature', '0', '--num_beams', '1', '--max_new_tokens', '40');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(`${golden.prompt}${r.stdout.trimEnd()}`, golden.greedy_40);
});

test('--instruction prints a response, streamed or not, the same text for the same seed', (t) => {
  if (!needShared(t, 'fixtures', 'trainer', 'base', 'tokenizer.model')) return;
  const base = sharedPath('fixtures', 'trainer', 'base');
  const sampling = ['--base_model', base, '--temperature', '0.7', '--num_beams', '1', '--seed', '5', '--max_new_tokens', '8'];
  const args = [...sampling, '--instruction', 'Name three colors.'];
  const plain = cli(...args);
  assert.equal(plain.code, 0, plain.stderr);
  assert.ok(plain.stdout.endsWith('\n') && plain.stdout.trim().length > 0, JSON.stringify(plain.stdout));
  const streamed = cli(...args, '--stream');
  assert.equal(streamed.code, 0, streamed.stderr);
  assert.equal(streamed.stdout.trim(), plain.stdout.trim());
  const loop = cliWithInput('Name three colors.\n\nName three colors.\n\n', ...sampling);
  assert.equal(loop.code, 0, loop.stderr);
  assert.equal(loop.stdout, plain.stdout.repeat(2), 'the interactive loop answers each instruction read from stdin');
});

test('bad flags are errors naming the flag', (t) => {
  if (!needShared(t, 'fixtures', 'trainer', 'base', 'tokenizer.model')) return;
  const base = sharedPath('fixtures', 'trainer', 'base');
  const cases: [string[], RegExp][] = [
    [['--instruction', 'x'], /--base_model is required/],
    [['--base_model', base, '--prompt_ids', '1,x'], /--prompt_ids must be comma-separated token ids/],
    [['--base_model', base, '--prompt_ids', '1', '--temperature', '-1'], /--temperature must be >= 0/],
    [['--base_model', base, '--prompt_ids', '1', '--top_p', '0'], /--top_p must be in \(0, 1\]/],
    [['--base_model', base, '--prompt_ids', '1', '--max_new_tokens', '0'], /--max_new_tokens must be an integer >= 1/],
    [['--base_model', base, '--prompt_ids', '1,99999'], /token id 99999 is outside the vocabulary/],
  ];
  for (const [args, message] of cases) {
    const r = cli(...args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});
