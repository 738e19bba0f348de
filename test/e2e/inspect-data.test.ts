// `alpaca-lora inspect-data` run as a user runs it, on ../shared data and the trainer fixture's
// tokenizer: the report, the example rendering, --dump_jsonl (checked against the rows the reference
// Trainer trained on), reading the dump back, and the errors a user meets first.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { needShared, PROJECT_ROOT, sharedPath } from '../helpers/shared.ts';

const BASE = ['fixtures', 'trainer', 'base'];
const DATA = ['data', 'alpaca_data_first335.json'];
const root = mkdtempSync(join(tmpdir(), 'inspect-data-'));
after(() => rmSync(root, { recursive: true, force: true }));

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'alpaca-lora.js'), 'inspect-data', ...args], { encoding: 'utf8', cwd: PROJECT_ROOT });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const trainedIn = (rows: { labels: number[] }[]) => rows.reduce((n, r) => n + r.labels.slice(1).filter((l) => l !== -100).length, 0);

test('reports the data set and dumps the rows the reference Trainer trained on', (t) => {
  if (!needShared(t, ...BASE, 'tokenizer.model') || !needShared(t, ...DATA)) return;
  const dump = join(root, 'rows.jsonl');
  const r = cli('--base_model', sharedPath(...BASE), '--data_path', sharedPath(...DATA), '--cutoff_len', '96', '--train_on_inputs', 'false', '--skip-empty-outputs', '--dump_jsonl', dump);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /alpaca_data_first335\.json: 334 records, alpaca format; 1 left out for an empty response/);
  assert.match(r.stdout, /settings +cutoff_len 96, train_on_inputs false, add_eos_token false/);
  assert.match(r.stdout, /tokens\/example +min \d+ +p50 \d+ +p90 \d+ +p95 \d+ +p99 96 +max 96 +mean [\d.]+/);
  assert.match(r.stdout, /example 0: 96 tokens, \d+ trained; \[\[ \]\] marks masked tokens/);
  assert.ok(r.stdout.includes('[[<s> Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nGive three tips for staying healthy.\n\n### Response:\n]]1.Eat a balanced diet'), r.stdout);

  const rows: { input_ids: number[]; labels: number[] }[] = readFileSync(dump, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  assert.equal(rows.length, 334);
  assert.deepEqual(readdirSync(root), ['rows.jsonl'], 'no temporary file is left behind');
  const golden = JSON.parse(readFileSync(sharedPath('fixtures', 'trainer', 'trainer_golden.json'), 'utf8')).rows as { input_ids: number[]; labels: number[] }[];
  golden.forEach((row, i) => {
    assert.deepEqual(rows[i]!.input_ids, row.input_ids, `row ${i}`);
    assert.deepEqual(rows[i]!.labels, row.labels, `row ${i}`);
  });
  const atCutoff = rows.filter((row) => row.input_ids.length >= 96).length;
  assert.match(r.stdout, new RegExp(`at cutoff_len +${atCutoff} of 334 examples`));
  const trained = trainedIn(rows);
  const total = rows.reduce((n, row) => n + row.input_ids.length, 0);
  assert.match(r.stdout, new RegExp(`trained tokens +${trained} of ${total} `));

  const again = cli('--base-model', sharedPath(...BASE), '--data-path', dump, '--cutoff_len', '96');
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /334 records, tokenized format/);
  assert.match(again.stdout, new RegExp(`trained tokens +${trained} of ${total} `), 'the dump reads back as the same examples');
});

test('fails on the data set\'s empty response, naming the record and its line', (t) => {
  if (!needShared(t, ...BASE, 'tokenizer.model') || !needShared(t, ...DATA)) return;
  const r = cli('--base_model', sharedPath(...BASE), '--data_path', sharedPath(...DATA));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: .*alpaca_data_first335\.json: record 284 \(line 1422\): "output" is empty \(the only such record\); .*fix it, or pass --skip_empty_outputs to leave it out\n$/);
});

test('conversations: the chat template, dropped turns, and a rendered conversation with only the answer unmasked', (t) => {
  if (!needShared(t, ...BASE, 'tokenizer.model')) return;
  const parquet = join(PROJECT_ROOT, 'test', 'fixtures', 'parquet');
  const r = cli('--base_model', sharedPath(...BASE), '--data_path', `${join(parquet, 'sharegpt.parquet')},${join(parquet, 'alpaca.parquet')}`,
    '--chat_template', 'llama2', '--example_index', '1');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /sharegpt\.parquet: 2 records, sharegpt format\n.*alpaca\.parquet: 5 records, alpaca format\nmixed +7 records \(concatenated\)/);
  assert.match(r.stdout, /chat template +llama2: conversations rendered with it; only assistant turns \(and their end-of-turn tokens\) train/);
  assert.match(r.stdout, /settings +cutoff_len 256, train_on_inputs false/);
  assert.ok(r.stdout.includes('[[<s> [INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n2+2? [/INST]]] 4 </s>'), r.stdout);
});

test('--new_special_tokens tokenizes chat data with the added tokens as single ids (tokenizer.model base)', (t) => {
  if (!needShared(t, ...BASE, 'tokenizer.model')) return;
  const data = join(root, 'chats.jsonl');
  writeFileSync(data, JSON.stringify({ conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Hello!' }] }) + '\n');
  const dump = join(root, 'chat-rows.jsonl');
  const r = cli('--base_model', sharedPath(...BASE), '--data_path', data, '--chat_template', 'chatml', '--new_special_tokens', '<|im_start|>,<|im_end|>', '--dump_jsonl', dump);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /vocab 32002/);
  const [row] = readFileSync(dump, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { input_ids: number[] });
  // <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n: each marker one id, the text between as before
  assert.deepEqual(row!.input_ids.filter((id) => id >= 32000), [32000, 32001, 32000, 32001]);
});
