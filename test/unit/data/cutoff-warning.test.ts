// The cutoff_len warning on Chinese data (LLaMA-Factory's alpaca_zh demo under the LLaMA-2 tokenizer, where most
// characters are 2-3 byte tokens): finetune's data preparation warns when more than 5% of the examples are cut,
// with the count and the 95th percentile length as the suggested cutoff. The expected count and percentile are
// computed here independently: each example's whole prompt + response tokenized in one piece, plus BOS and EOS.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Prompter } from '../../../src/data/prompter.ts';
import { loadTokenizer } from '../../../src/tokenizer/load.ts';
import { FINETUNE_DEFAULTS } from '../../../src/train/finetune-options.ts';
import { prepareData } from '../../../src/train/prepare-data.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';

test('Chinese alpaca data: > 5% cut at cutoff_len 256 is warned with the count and the 95th percentile', async (t) => {
  if (!needShared(t, 'data', 'llamafactory_alpaca_zh_demo.json') || !needShared(t, 'fixtures', 'tokenizers', 'llama2')) return;
  const dataPath = sharedPath('data', 'llamafactory_alpaca_zh_demo.json');
  const tokenizer = loadTokenizer(sharedPath('fixtures', 'tokenizers', 'llama2'));
  const prompter = Prompter.load('alpaca');
  const records = JSON.parse(readFileSync(dataPath, 'utf8')) as { instruction: string; input: string; output: string }[];
  const lengths = records
    .map((r) => 1 + tokenizer.encode(prompter.generatePrompt(r.instruction, r.input, r.output), { addBos: false, addEos: false }).length + 1)
    .sort((a, b) => a - b);
  const cutoffLen = 256;
  const cut = lengths.filter((n) => n > cutoffLen).length;
  const p95 = lengths[Math.ceil(0.95 * lengths.length) - 1]!;
  assert.ok(cut > 0.05 * lengths.length, `the data set is cut more than 5% at ${cutoffLen} (${cut} of ${lengths.length})`);

  const run = async (cutoff: number) => {
    const warnings: string[] = [];
    await prepareData(tokenizer, { ...FINETUNE_DEFAULTS, dataPath, valSetSize: 0, cutoffLen: cutoff, warn: (m) => warnings.push(m) });
    return warnings;
  };
  const warned = await run(cutoffLen);
  assert.equal(warned.length, 1);
  assert.match(warned[0]!, new RegExp(`${cut} of ${lengths.length} examples \\(${((100 * cut) / lengths.length).toFixed(1)}%\\) are longer than --cutoff_len ${cutoffLen}`));
  assert.match(warned[0]!, new RegExp(`pass --cutoff_len ${p95} to keep them whole`));
  assert.deepEqual(await run(p95), [], 'at the suggested cutoff at most 5% are cut: no warning');
});
