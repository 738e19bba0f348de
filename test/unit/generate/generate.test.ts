// generate() behaviour on a fixture model: a batch of prompts gives each row what it gets alone, EOS
// ends a row, n copies of a prompt sample apart but reproducibly, cancellation stops between steps, bad ids are refused.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsBackend } from '../../../src/backends/js/index.ts';
import { generate } from '../../../src/generate/generate.ts';
import { DEFAULT_OPTIONS } from '../../../src/generate/options.ts';
import { loadModel } from '../../../src/model/load.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';

const MODEL = ['fixtures', 'models', 'llama-mha'];
const greedy = { ...DEFAULT_OPTIONS, maxNewTokens: 6 };

test('a batch of prompts gives every row the tokens it gets alone (greedy, beams)', async (t) => {
  if (!needShared(t, ...MODEL, 'model.safetensors')) return;
  const m = await loadModel(new JsBackend(), sharedPath(...MODEL));
  const prompts = [[1, 17, 42, 99, 5, 230], [1, 300], [7, 8, 9, 10]];
  const batch = await generate(m, null, prompts, greedy);
  for (let i = 0; i < prompts.length; i++) assert.deepEqual(batch[i], (await generate(m, null, [prompts[i]!], greedy))[0], `row ${i}`);
  const beams = await generate(m, null, prompts.slice(0, 2), { ...greedy, numBeams: 2 });
  assert.deepEqual(beams[1], (await generate(m, null, [prompts[1]!], { ...greedy, numBeams: 2 }))[0]);
});

test('EOS ends a row (kept as its last token); n copies of a prompt sample differently', async (t) => {
  if (!needShared(t, ...MODEL, 'model.safetensors')) return;
  const m = await loadModel(new JsBackend(), sharedPath(...MODEL));
  const prompt = [1, 17, 42, 99, 5, 230];
  const [free] = await generate(m, null, [prompt], greedy);
  const eos = free!.tokens[2]!;
  const [stopped] = await generate(m, null, [prompt], { ...greedy, eosTokenIds: [eos] });
  assert.deepEqual(stopped, { tokens: free!.tokens.slice(0, free!.tokens.indexOf(eos) + 1), finishReason: 'stop' });
  const sampling = { ...greedy, doSample: true, temperature: 1.5, seed: 1 };
  const rows = await generate(m, null, [prompt, prompt, prompt], sampling);
  assert.equal(new Set(rows.map((r) => r.tokens.join(','))).size, 3);
  assert.deepEqual(await generate(m, null, [prompt, prompt, prompt], sampling), rows, 'the same seed draws the same');
});

test('an aborted signal stops between steps; out-of-vocabulary ids are refused', async (t) => {
  if (!needShared(t, ...MODEL, 'model.safetensors')) return;
  const m = await loadModel(new JsBackend(), sharedPath(...MODEL));
  const controller = new AbortController();
  const [r] = await generate(m, null, [[1, 2, 3]], { ...greedy, maxNewTokens: 50 }, {
    signal: controller.signal,
    onToken: (_row, _id) => void (_id >= 0 && controller.abort()),
  });
  assert.deepEqual([r!.tokens.length, r!.finishReason], [1, 'cancelled']);
  await assert.rejects(generate(m, null, [[1, 512]], greedy), /token id 512 is outside the vocabulary/);
});
