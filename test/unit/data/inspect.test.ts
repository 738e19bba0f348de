// What inspect-data computes: length percentiles, examples at cutoff_len, trained tokens, the rendering
// of masked spans; and the --dump_jsonl file, written atomically and read back as pre-tokenized rows.

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadDataset } from '../../../src/data/dataset.ts';
import { renderExample, summarizeExamples } from '../../../src/data/inspect.ts';
import { Prompter } from '../../../src/data/prompter.ts';
import { IGNORE_INDEX as M, makePromptTokenizer } from '../../../src/data/tokenize.ts';
import { writeTokenizedJsonl } from '../../../src/data/tokenized-jsonl.ts';
import { CharTokenizer } from './char-tokenizer.ts';

const root = mkdtempSync(join(tmpdir(), 'inspect-'));
after(() => rmSync(root, { recursive: true, force: true }));
const tokenizer = new CharTokenizer();
const example = (input_ids: number[], labels: number[]) => ({ input_ids, labels, attention_mask: input_ids.map(() => 1) });

test('summarizeExamples: nearest-rank percentiles, examples at cutoff_len, trained tokens', () => {
  const examples = Array.from({ length: 100 }, (_, i) => example(Array(i + 1).fill(5), [M, ...Array(i).fill(5)]));
  const s = summarizeExamples(examples, 95);
  assert.deepEqual(s.lengths, { min: 1, p50: 50, p90: 90, p95: 95, p99: 99, max: 100, mean: 50.5 });
  assert.equal(s.atCutoff, 6);
  assert.equal(s.tokens, 5050);
  assert.equal(s.trainedTokens, 4950);
  assert.equal(s.untrainedExamples, 1);
});

test('renderExample marks masked spans and keeps special tokens visible', () => {
  const prompter = new Prompter({ source: 't', description: '', prompt_input: '', prompt_no_input: 'Q: {instruction}\nA: ', response_split: 'A:' });
  const f = makePromptTokenizer(tokenizer, prompter, { cutoffLen: 64, trainOnInputs: false, addEosToken: false });
  const e = f({ kind: 'instruction', instruction: 'hi?', input: '', output: 'hello' });
  assert.equal(renderExample(tokenizer, e), '[[<s>Q: hi?\nA: ]]hello</s>');
  assert.equal(renderExample(tokenizer, example([1, 70, 71, 72], [M, 70, M, 72]), { open: '<', close: '>' }), '<<s>>C<D>E');
});

test('writeTokenizedJsonl writes one row per line in order, leaves no temporary file, and reads back', async () => {
  const rows = [example([1, 10, 11], [M, 10, 11]), example([1, 12], [1, 12])];
  const path = join(root, 'rows.jsonl');
  await writeTokenizedJsonl(path, rows);
  assert.deepEqual(readdirSync(root), ['rows.jsonl']);
  assert.equal(readFileSync(path, 'utf8'), '{"input_ids": [1, 10, 11], "labels": [-100, 10, 11]}\n{"input_ids": [1, 12], "labels": [1, 12]}\n');
  const dataset = await loadDataset(path);
  assert.deepEqual(dataset.records, rows.map((r) => ({ kind: 'tokenized', input_ids: r.input_ids, labels: r.labels })));
});
