// The data pipeline against alpaca-lora's own (../shared/fixtures): generate_and_tokenize_prompt for all
// 8 cases of alpaca_pipeline_golden.json token for token, its collated batch, and the 24 rows the
// reference Trainer trained on (trainer/trainer_golden.json: first 24 records, cutoff 96, inputs masked).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { collate } from '../../src/data/collate.ts';
import { loadDataset } from '../../src/data/dataset.ts';
import { Prompter } from '../../src/data/prompter.ts';
import { makePromptTokenizer } from '../../src/data/tokenize.ts';
import { loadTokenizer } from '../../src/tokenizer/load.ts';
import { SentencePieceTokenizer } from '../../src/tokenizer/sentencepiece-tokenizer.ts';
import { needShared, sharedPath } from '../helpers/shared.ts';

interface Row {
  input_ids: number[];
  labels: number[];
  attention_mask?: number[];
}

interface PipelineGolden {
  records: { instruction: string; input: string; output: string }[];
  cases: { cutoff_len: number; train_on_inputs: boolean; add_eos_token: boolean; rows: Row[] }[];
  collated_left_pad_multiple_of_8: { input_ids: number[][]; attention_mask: number[][]; labels: number[][] };
}

// A copy of ../shared/fixtures/alpaca_pipeline_golden.json, so the collator test runs without ../shared.
const golden: PipelineGolden = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'alpaca_pipeline_golden.json'), 'utf8'));
const TOKENIZER = ['fixtures', 'tokenizers', 'llama2', 'tokenizer.model'];

describe('alpaca-lora generate_and_tokenize_prompt', () => {
  for (const c of golden.cases) {
    test(`cutoff_len ${c.cutoff_len}, train_on_inputs ${c.train_on_inputs}, add_eos_token ${c.add_eos_token}`, (t) => {
      if (!needShared(t, ...TOKENIZER)) return;
      const tokenizer = SentencePieceTokenizer.fromFile(sharedPath(...TOKENIZER));
      const f = makePromptTokenizer(tokenizer, Prompter.load('alpaca'), { cutoffLen: c.cutoff_len, trainOnInputs: c.train_on_inputs, addEosToken: c.add_eos_token });
      golden.records.forEach((r, i) => {
        const e = f({ kind: 'instruction', ...r });
        assert.deepEqual(e.input_ids, c.rows[i]!.input_ids, `record ${i} input_ids`);
        assert.deepEqual(e.labels, c.rows[i]!.labels, `record ${i} labels`);
      });
    });
  }
});

test('the collator reproduces collated_left_pad_multiple_of_8', () => {
  const expected = golden.collated_left_pad_multiple_of_8;
  const batch = collate(golden.cases[0]!.rows.slice(0, 3), { padId: 0, padToMultipleOf: 8, padSide: 'left' });
  assert.equal(batch.B, 3);
  assert.equal(batch.T, expected.input_ids[0]!.length);
  assert.deepEqual([...batch.inputIds], expected.input_ids.flat());
  assert.deepEqual([...batch.attentionMask], expected.attention_mask.flat());
  assert.deepEqual([...batch.labels], expected.labels.flat());
});

test('the 24 rows the reference Trainer trained on (trainer_golden.json), from the data file', async (t) => {
  const base = ['fixtures', 'trainer', 'base'];
  if (!needShared(t, ...base, 'tokenizer.model') || !needShared(t, 'data', 'alpaca_data_first335.json')) return;
  const trainer: { recipe: { cutoff_len: number; train_on_inputs: boolean; add_eos_token: boolean; template: string }; rows: Row[] } = JSON.parse(
    readFileSync(sharedPath('fixtures', 'trainer', 'trainer_golden.json'), 'utf8'),
  );
  const { recipe } = trainer;
  assert.deepEqual([recipe.cutoff_len, recipe.train_on_inputs, recipe.add_eos_token, recipe.template], [96, false, false, 'alpaca']);
  const dataset = await loadDataset(sharedPath('data', 'alpaca_data_first335.json'), { skipEmptyOutputs: true });
  const f = makePromptTokenizer(loadTokenizer(sharedPath(...base)), Prompter.load(recipe.template), {
    cutoffLen: recipe.cutoff_len,
    trainOnInputs: recipe.train_on_inputs,
    addEosToken: recipe.add_eos_token,
  });
  const rows = dataset.records.slice(0, trainer.rows.length).map(f);
  assert.equal(rows.length, 24);
  rows.forEach((row, i) => {
    assert.deepEqual(row.input_ids, trainer.rows[i]!.input_ids, `row ${i} input_ids`);
    assert.deepEqual(row.labels, trainer.rows[i]!.labels, `row ${i} labels`);
    assert.deepEqual(row.attention_mask, trainer.rows[i]!.attention_mask, `row ${i} attention_mask`);
  });
});
