// Train what you serve: finetune on ShareGPT conversations with --chat_template chatml (the built-in tiny model, one
// step on js) saves the template beside the adapter; loading that adapter for generate/serve makes it that adapter's
// chat template, and a served prompt is rendered and tokenized exactly as the training rows were.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import { selectBackend } from '../../src/backends/select.ts';
import { chooseChatTemplate } from '../../src/data/chat-template-source.ts';
import { renderedTextEncoder } from '../../src/data/encode-rendered.ts';
import { writeExampleModel } from '../../src/example/run-example.ts';
import { loadRuntime } from '../../src/generate/runtime.ts';
import { chatPrompt } from '../../src/server/chat.ts';
import { finetune } from '../../src/train/finetune.ts';
import { prepareData } from '../../src/train/prepare-data.ts';
import { FINETUNE_DEFAULTS } from '../../src/train/finetune-options.ts';

test('finetune on conversations saves its chat template; generate and serve render with it', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'finetune-chat-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const model = join(work, 'model');
  await writeExampleModel(model, () => {});
  const data = join(work, 'chats.jsonl');
  const chats = [['Hi', 'Hello!'], ['Name a colour.', 'Blue.'], ['2+2?', '4'], ['Say yes.', 'Yes.']];
  writeFileSync(data, chats.map(([q, a]) => JSON.stringify({ conversations: [{ from: 'human', value: q }, { from: 'gpt', value: a }] })).join('\n'));
  const out = join(work, 'out');
  const options = { baseModel: model, dataPath: data, chatTemplate: 'chatml', outputDir: out, valSetSize: 0, shuffle: false };
  const result = await finetune({
    ...options, backend: new JsBackend(), maxSteps: 1, batchSize: 4, microBatchSize: 4, saveSteps: 0, progress: false, log: () => {},
  });
  assert.equal(result.steps, 1);
  const chatml = chooseChatTemplate('chatml', '', {}).source;
  assert.equal(readFileSync(join(out, 'chat_template.jinja'), 'utf8'), chatml);

  const rt = await loadRuntime({ backend: selectBackend('js', () => {}), baseModel: model, loraWeights: [out] });
  assert.deepEqual([...rt.adapterChatTemplates], [['out', chatml]]);
  const served = await chatPrompt(rt, [{ role: 'user', content: 'Hi' }]);
  assert.equal(served.text, '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  // the base model itself (no adapter) keeps the tokenizer's template: the example tokenizer has none
  await assert.rejects(chatPrompt(rt, [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: 'c' }], rt.baseName),
    /no chat template/);
  // the served prompt's ids are the training row's ids up to where the first answer starts
  const prepared = await prepareData(rt.tokenizer, { ...FINETUNE_DEFAULTS, ...options, tokenizerDir: model });
  const row = prepared.train[0]!;
  const answerStart = row.labels.findIndex((l) => l !== -100);
  assert.deepEqual(renderedTextEncoder(rt.tokenizer)(served.text), row.input_ids.slice(0, answerStart));
});
