// --new_special_tokens end to end on the built-in tiny model (tokenizer.json; untied head, as modules_to_save
// needs): a LoRA run on chatml conversations adds <|im_start|>/<|im_end|>, grows the vocabulary, trains
// embed_tokens and lm_head as modules_to_save without being asked, and saves them under PEFT's keys with the
// tokenizer beside them. Greedy generation from the saved adapter (generate's runtime, and serve) gives the
// tokens the in-memory model gives, and so does export-hf's merged folder loaded as a plain model (its
// config.json vocab_size and tokenizer grown). Adapters that do not fit are one-line errors naming the file.

import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import { renderedTextEncoder } from '../../src/data/encode-rendered.ts';
import { writeExampleModel } from '../../src/example/run-example.ts';
import { exportHf } from '../../src/export/export-hf.ts';
import { UserError } from '../../src/errors.ts';
import { toFloat32 } from '../../src/formats/host-tensor.ts';
import { readPeftAdapter } from '../../src/formats/peft-adapter.ts';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { writeSafetensors } from '../../src/formats/safetensors-write.ts';
import { peftModuleKey } from '../../src/formats/weight-names.ts';
import { generate } from '../../src/generate/generate.ts';
import { DEFAULT_OPTIONS } from '../../src/generate/options.ts';
import { loadRuntime, pickAdapter } from '../../src/generate/runtime.ts';
import { withMeanRows } from '../../src/model/resize-vocab.ts';
import { loadTokenizer } from '../../src/tokenizer/load.ts';
import { finetune } from '../../src/train/finetune.ts';
import { startServe } from './serve-helper.ts';

const work = mkdtempSync(join(tmpdir(), 'new-tokens-'));
after(() => rmSync(work, { recursive: true, force: true }));
const NEW = ['<|im_start|>', '<|im_end|>'];
const PROMPT = '<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n';
const GREEDY = { ...DEFAULT_OPTIONS, maxNewTokens: 6 };

/** The example model with its head untied (a copy of the embedding), as modules_to_save needs its own lm_head. */
async function untiedBase(dir: string): Promise<void> {
  await writeExampleModel(dir, () => {});
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, tie_word_embeddings: false }));
  const stored = readSafetensors(join(dir, 'model.safetensors'));
  stored.set('lm_head.weight', stored.get('model.embed_tokens.weight')!);
  await writeSafetensors(join(dir, 'model.safetensors'), stored);
}

test('finetune --new_special_tokens: grown vocabulary saved under PEFT keys with its tokenizer; generate, serve and export-hf agree', async () => {
  const base = join(work, 'base');
  await untiedBase(base);
  const V = loadTokenizer(base).vocabSize;
  const data = join(work, 'chats.jsonl');
  const chats = [['Hi', 'Hello!'], ['Name a colour.', 'Blue.'], ['2+2?', '4'], ['Say yes.', 'Yes.']];
  writeFileSync(data, chats.map(([q, a]) => JSON.stringify({ conversations: [{ from: 'human', value: q }, { from: 'gpt', value: a }] })).join('\n'));
  const out = join(work, 'adapter');
  const lines: string[] = [];
  const result = await finetune({
    baseModel: base, dataPath: data, chatTemplate: 'chatml', outputDir: out, valSetSize: 0, shuffle: false, backend: new JsBackend(),
    newSpecialTokens: NEW, maxSteps: 3, batchSize: 4, microBatchSize: 4, learningRate: 2e-2, warmupSteps: 0, saveSteps: 0,
    loraTargetModules: ['q_proj', 'v_proj'], progress: false, log: (line) => lines.push(line),
  });
  assert.ok(lines.some((l) => l.includes('embed_tokens and lm_head train as modules_to_save')), 'the automatic modules_to_save is logged');
  assert.equal(result.model.config.vocabSize, V + 2);
  assert.deepEqual(result.tokenizer.encode(PROMPT, { addBos: false }).filter((id) => id >= V), [V, V + 1, V], 'the new tokens are single ids');

  // the adapter folder: PEFT's keys with V + 2 rows, modules_to_save, and the tokenizer with the added tokens
  const peft = readPeftAdapter(out);
  assert.deepEqual(peft.config.modulesToSave, ['embed_tokens', 'lm_head']);
  const baseWeights = readSafetensors(join(base, 'model.safetensors'));
  for (const [module, hf] of [['embed_tokens', 'model.embed_tokens.weight'], ['lm_head', 'lm_head.weight']] as const) {
    const saved = peft.tensors.get(peftModuleKey(module))!;
    const C = saved.shape[1]!;
    assert.deepEqual(saved.shape, [V + 2, C], module);
    const start = withMeanRows(toFloat32(baseWeights.get(hf)!), V, C, V + 2); // the rows before training
    const rows = toFloat32(saved);
    for (const v of [V, V + 1]) assert.ok(rows.subarray(v * C, (v + 1) * C).some((x, c) => x !== start[v * C + c]), `${module} row ${v} trained`);
  }
  const tokenizerJson = JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8'));
  assert.deepEqual(tokenizerJson.added_tokens.slice(-2).map((t: { id: number; content: string; special: boolean }) => [t.id, t.content, t.special]),
    [[V, NEW[0], true], [V + 1, NEW[1], true]]);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8')).additional_special_tokens.slice(-2), NEW);

  // generate from the saved adapter = the in-memory model and adapter
  const prompt = renderedTextEncoder(result.tokenizer)(PROMPT);
  const [inMemory] = await generate(result.model, { adapter: result.adapter!, dropout: 0, seed: 0 }, [prompt], GREEDY);
  const rt = await loadRuntime({ backend: new JsBackend(), baseModel: base, loraWeights: [out] });
  assert.equal(rt.tokenizer.vocabSize, V + 2, 'the adapter folder\'s tokenizer is used');
  assert.deepEqual(renderedTextEncoder(rt.tokenizer)(PROMPT), prompt);
  assert.throws(() => pickAdapter(rt, rt.baseName), /not served on its own/);
  const [fromFolder] = await generate(rt.model, pickAdapter(rt, undefined), [prompt], GREEDY);
  assert.deepEqual(fromFolder!.tokens, inMemory!.tokens);

  // export-hf: merged weights, vocab_size and tokenizer grown; loaded as a plain model it generates the same
  const merged = join(work, 'merged');
  await exportHf({ baseModel: base, loraWeights: out, outputDir: merged, backend: new JsBackend() });
  assert.equal(JSON.parse(readFileSync(join(merged, 'config.json'), 'utf8')).vocab_size, V + 2);
  assert.equal(loadTokenizer(merged).vocabSize, V + 2);
  const plain = await loadRuntime({ backend: new JsBackend(), baseModel: merged, loraWeights: [] });
  const [fromMerged] = await generate(plain.model, null, [prompt], GREEDY);
  assert.deepEqual(fromMerged!.tokens, inMemory!.tokens);

  // serve with the adapter at start answers with the same tokens
  const server = await startServe(['--base_model', base, '--lora_weights', out]);
  try {
    const r = await fetch(`${server.url}/v1/completions`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ prompt, max_tokens: GREEDY.maxNewTokens, temperature: 0 }),
    });
    assert.equal(r.status, 200);
    const text = ((await r.json()) as { choices: { text: string }[] }).choices[0]!.text;
    assert.equal(text, rt.tokenizer.decode(inMemory!.tokens, { skipSpecialTokens: true }));
  } finally {
    await server.stop();
  }

  // adapters that do not fit: one-line errors naming the file
  const oneLine = (re: RegExp) => (err: unknown) => err instanceof UserError && !err.message.includes('\n') && re.test(err.message);
  const extraToken = join(work, 'extra-token');
  cpSync(out, extraToken, { recursive: true });
  const json = JSON.parse(readFileSync(join(extraToken, 'tokenizer.json'), 'utf8'));
  json.added_tokens.push({ id: V + 2, content: '<extra>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  writeFileSync(join(extraToken, 'tokenizer.json'), JSON.stringify(json));
  await assert.rejects(loadRuntime({ backend: new JsBackend(), baseModel: base, loraWeights: [extraToken] }),
    oneLine(new RegExp(`extra-token/tokenizer.json has ${V + 3} tokens but the adapter's weights .* cover ${V + 2}`)));
  const smaller = join(work, 'smaller');
  cpSync(out, smaller, { recursive: true });
  const tensors = readSafetensors(join(smaller, 'adapter_model.safetensors'));
  for (const module of ['embed_tokens', 'lm_head'] as const) {
    const t = tensors.get(peftModuleKey(module))!;
    const C = t.shape[1]!;
    tensors.set(peftModuleKey(module), { dtype: 'F32', shape: [V - 1, C], data: toFloat32(t).slice(0, (V - 1) * C) });
  }
  await writeSafetensors(join(smaller, 'adapter_model.safetensors'), tensors);
  rmSync(join(smaller, 'tokenizer.json'));
  await assert.rejects(loadRuntime({ backend: new JsBackend(), baseModel: base, loraWeights: [smaller] }),
    oneLine(/smaller: "base_model\.model\.(model\.embed_tokens|lm_head)\.weight" .* fewer rows than the base.s vocabulary/));
});
