// --new_special_tokens end to end on the built-in tiny model (tokenizer.json; untied head, as modules_to_save
// needs): a LoRA run on chatml conversations adds <|im_start|>/<|im_end|>, grows the vocabulary, trains
// embed_tokens and lm_head as modules_to_save without being asked, and saves them under PEFT's keys with the
// tokenizer beside them. Greedy generation from the saved adapter (generate's runtime, and serve) gives the
// tokens the in-memory model gives, and so do export-hf's merged folder loaded as a plain model (its
// config.json vocab_size and tokenizer grown) and llama.cpp on export-gguf's file (which also tokenizes the
// prompt's new tokens as we do). Full and freeze fine-tuning write a grown folder, also from a tokenizer.model base. Adapters that do not fit are one-line
// errors naming the file; serve takes no second adapter beside one with modules_to_save.

import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { getLlama, type Token } from 'node-llama-cpp';
import { JsBackend } from '../../src/backends/js/index.ts';
import { chooseChatTemplate } from '../../src/data/chat-template-source.ts';
import { renderedTextEncoder } from '../../src/data/encode-rendered.ts';
import { writeExampleModel } from '../../src/example/run-example.ts';
import { exportGguf } from '../../src/export/export-gguf.ts';
import { exportHf } from '../../src/export/export-hf.ts';
import { TOKEN_TYPE } from '../../src/export/gguf-vocab.ts';
import { GgufFile } from '../../src/formats/gguf.ts';
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
import { finetune, type FinetuneInput, type FinetuneResult } from '../../src/train/finetune.ts';
import { needCpu } from '../helpers/cpu-backend.ts';
import { needShared, sharedPath } from '../helpers/shared.ts';
import { writeUntiedExampleModel } from '../helpers/untied-example.ts';
import { startServe } from './serve-helper.ts';

const work = mkdtempSync(join(tmpdir(), 'new-tokens-'));
after(() => rmSync(work, { recursive: true, force: true }));
const NEW = ['<|im_start|>', '<|im_end|>'];
const PROMPT = '<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n';
const GREEDY = { ...DEFAULT_OPTIONS, maxNewTokens: 6 };
const BASE_TEMPLATE = '{{ messages[0].content }}';

/** The untied example model (modules_to_save needs its own lm_head) with a chat template of its own. */
async function untiedBase(dir: string): Promise<void> {
  await writeUntiedExampleModel(dir);
  writeFileSync(join(dir, 'chat_template.jinja'), BASE_TEMPLATE); // the base's own, which the adapter's must not replace
}

const base = join(work, 'base');
const data = join(work, 'chats.jsonl');
const out = join(work, 'adapter');
let V = 0;
let trained: FinetuneResult;
const lines: string[] = [];

before(async () => {
  await untiedBase(base);
  V = loadTokenizer(base).vocabSize;
  const chats = [['Hi', 'Hello!'], ['Name a colour.', 'Blue.'], ['2+2?', '4'], ['Say yes.', 'Yes.']];
  writeFileSync(data, chats.map(([q, a]) => JSON.stringify({ conversations: [{ from: 'human', value: q }, { from: 'gpt', value: a }] })).join('\n'));
  trained = await finetune({
    baseModel: base, dataPath: data, chatTemplate: 'chatml', outputDir: out, valSetSize: 0, shuffle: false, backend: new JsBackend(),
    newSpecialTokens: NEW, maxSteps: 3, batchSize: 4, microBatchSize: 4, learningRate: 2e-2, warmupSteps: 0, saveSteps: 0,
    loraTargetModules: ['q_proj', 'v_proj'], progress: false, log: (line) => lines.push(line),
  });
});

/** The in-memory model's greedy tokens for PROMPT, and the prompt's ids. */
async function inMemoryGreedy(): Promise<{ prompt: number[]; tokens: number[] }> {
  const prompt = renderedTextEncoder(trained.tokenizer)(PROMPT);
  const [g] = await generate(trained.model, { adapter: trained.adapter!, dropout: 0, seed: 0 }, [prompt], GREEDY);
  return { prompt, tokens: g!.tokens };
}

test('finetune --new_special_tokens (LoRA): grown vocabulary saved under PEFT keys with its tokenizer; generate, serve and export-hf agree', async () => {
  const result = trained;
  assert.ok(lines.some((l) => l.includes('embed_tokens and lm_head train as modules_to_save')), 'the automatic modules_to_save is logged');
  assert.ok(lines.some((l) => l.includes('new_special_tokens: [<|im_start|>, <|im_end|>]')), 'the params block lists the new tokens');
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
  assert.equal(readFileSync(join(out, 'chat_template.jinja'), 'utf8'), chooseChatTemplate('chatml', '', {}).source, 'the template it trained with');

  // generate from the saved adapter = the in-memory model and adapter
  const { prompt, tokens } = await inMemoryGreedy();
  const inMemory = { tokens };
  const rt = await loadRuntime({ backend: new JsBackend(), baseModel: base, loraWeights: [out] });
  assert.equal(rt.tokenizer.vocabSize, V + 2, 'the adapter folder\'s tokenizer is used');
  assert.deepEqual(renderedTextEncoder(rt.tokenizer)(PROMPT), prompt);
  assert.throws(() => pickAdapter(rt, rt.baseName), /not served on its own/);
  assert.ok(rt.eosTokenIds.includes(V + 1) && !rt.eosTokenIds.includes(V), 'generation stops at the new <|im_end|>, not at <|im_start|>');
  const [fromFolder] = await generate(rt.model, pickAdapter(rt, undefined), [prompt], GREEDY);
  assert.deepEqual(fromFolder!.tokens, inMemory.tokens);

  // export-hf: merged weights, vocab_size and tokenizer grown; loaded as a plain model it generates the same
  const merged = join(work, 'merged');
  await exportHf({ baseModel: base, loraWeights: out, outputDir: merged, backend: new JsBackend() });
  assert.equal(JSON.parse(readFileSync(join(merged, 'config.json'), 'utf8')).vocab_size, V + 2);
  assert.equal(loadTokenizer(merged).vocabSize, V + 2);
  const plain = await loadRuntime({ backend: new JsBackend(), baseModel: merged, loraWeights: [] });
  const [fromMerged] = await generate(plain.model, null, [prompt], GREEDY);
  assert.deepEqual(fromMerged!.tokens, inMemory.tokens);

  // serve with the adapter at start answers with the same tokens
  const server = await startServe(['--base_model', base, '--lora_weights', out]);
  try {
    const r = await fetch(`${server.url}/v1/completions`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ prompt, max_tokens: GREEDY.maxNewTokens, temperature: 0 }),
    });
    assert.equal(r.status, 200);
    const text = ((await r.json()) as { choices: { text: string }[] }).choices[0]!.text;
    assert.equal(text, rt.tokenizer.decode(inMemory.tokens, { skipSpecialTokens: true }));
    // the base is not served on its own, and no second adapter joins one with modules_to_save
    const models = ((await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string }[] }).data.map((d) => d.id);
    assert.deepEqual(models, ['adapter']);
    const add = await fetch(`${server.url}/v1/adapters`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ path: join(work, 'adapter'), name: 'again' }),
    });
    assert.equal(add.status, 400);
    assert.match(((await add.json()) as { error: { message: string } }).error.message, /replaced the base's embed_tokens\/lm_head \(modules_to_save\): this server takes no other adapter/);
  } finally {
    await server.stop();
  }
});

test('on the cpu backend, generate from the saved adapter gives the in-memory (js) tokens', async (t) => {
  const cpu = needCpu(t);
  if (!cpu) return;
  const { prompt, tokens } = await inMemoryGreedy();
  const rt = await loadRuntime({ backend: cpu, baseModel: base, loraWeights: [out] });
  assert.equal(rt.model.config.vocabSize, V + 2);
  const [g] = await generate(rt.model, pickAdapter(rt, undefined), [prompt], GREEDY);
  assert.deepEqual(g!.tokens, tokens);
});

test('export-gguf carries the new tokens as control tokens: llama.cpp tokenizes the prompt as we do and generates the same tokens', async () => {
  const gguf = join(work, 'merged.gguf');
  await exportGguf({ baseModel: base, loraWeights: out, outfile: gguf, outtype: 'f32' });
  const file = GgufFile.open(gguf);
  try {
    assert.equal(file.get('llama.vocab_size'), V + 2);
    assert.deepEqual((file.get('tokenizer.ggml.tokens') as string[]).slice(V), NEW);
    assert.deepEqual((file.get('tokenizer.ggml.token_type') as number[]).slice(V), [TOKEN_TYPE.control, TOKEN_TYPE.control]);
  } finally {
    file.close();
  }
  const { prompt, tokens } = await inMemoryGreedy();
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  try {
    const model = await llama.loadModel({ modelPath: gguf });
    assert.deepEqual(model.tokenize(PROMPT, true), prompt);
    const context = await model.createContext({ contextSize: 128, threads: 1 });
    const got: number[] = [];
    for await (const token of context.getSequence().evaluate(prompt as Token[], { temperature: 0 })) {
      got.push(token);
      if (got.length === GREEDY.maxNewTokens) break;
    }
    assert.deepEqual(got, tokens);
  } finally {
    await llama.dispose();
  }
});

for (const finetuningType of ['full', 'freeze'] as const) {
  test(`${finetuningType} fine-tuning with --new_special_tokens writes a folder with the grown vocabulary that loads as a base`, async () => {
    const dir = join(work, finetuningType);
    const result = await finetune({
      baseModel: base, dataPath: data, chatTemplate: 'chatml', outputDir: dir, valSetSize: 0, shuffle: false, backend: new JsBackend(),
      newSpecialTokens: NEW, finetuningType, freezeTrainableLayers: 1, maxSteps: 1, batchSize: 4, microBatchSize: 4, learningRate: 1e-3, warmupSteps: 0,
      saveSteps: 0, progress: false, log: () => {},
    });
    assert.equal(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).vocab_size, V + 2);
    const weights = readSafetensors(join(dir, 'model.safetensors'));
    for (const name of ['model.embed_tokens.weight', 'lm_head.weight']) assert.equal(weights.get(name)!.shape[0], V + 2, name);
    const rt = await loadRuntime({ backend: new JsBackend(), baseModel: dir, loraWeights: [] });
    const prompt = renderedTextEncoder(rt.tokenizer)(PROMPT);
    assert.deepEqual(prompt.filter((id) => id >= V), [V, V + 1, V]);
    const [fromFolder] = await generate(rt.model, null, [prompt], GREEDY);
    const [inMemory] = await generate(result.model, null, [prompt], GREEDY);
    assert.deepEqual(fromFolder!.tokens, inMemory!.tokens);
  });
}

test('a tokenizer.model base (the trainer fixture, full fine-tuning): the output\'s tokenizer_config.json carries the tokens, and it loads as a base', async (t) => {
  if (!needShared(t, 'fixtures', 'trainer', 'base', 'tokenizer.model')) return;
  const dir = join(work, 'sentencepiece');
  const result = await finetune({
    baseModel: sharedPath('fixtures', 'trainer', 'base'), dataPath: data, chatTemplate: 'chatml', outputDir: dir, valSetSize: 0, shuffle: false,
    backend: new JsBackend(), newSpecialTokens: NEW, finetuningType: 'full', maxSteps: 1, batchSize: 4, microBatchSize: 4, learningRate: 1e-3,
    warmupSteps: 0, saveSteps: 0, progress: false, log: () => {},
  });
  const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
  assert.deepEqual(Object.entries(config.added_tokens_decoder).map(([id, v]) => [id, (v as { content: string }).content]), [['32000', NEW[0]], ['32001', NEW[1]]]);
  assert.equal(config.tokenizer_class, 'LlamaTokenizer');
  assert.equal(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).vocab_size, 32002);
  const rt = await loadRuntime({ backend: new JsBackend(), baseModel: dir, loraWeights: [] });
  const prompt = renderedTextEncoder(rt.tokenizer)(PROMPT);
  assert.deepEqual(prompt.filter((id) => id >= 32000), [32000, 32001, 32000]);
  const [fromFolder] = await generate(rt.model, null, [prompt], GREEDY);
  const [inMemory] = await generate(result.model, null, [prompt], GREEDY);
  assert.deepEqual(fromFolder!.tokens, inMemory!.tokens);
});

test('a run with --new_special_tokens resumes exactly from its checkpoint; without the same tokens the resume is refused', async () => {
  const run = (outputDir: string, extra: Partial<FinetuneInput> = {}) => finetune({
    baseModel: base, dataPath: data, chatTemplate: 'chatml', outputDir, valSetSize: 0, shuffle: false, backend: new JsBackend(),
    newSpecialTokens: NEW, maxSteps: 3, batchSize: 4, microBatchSize: 2, learningRate: 2e-2, warmupSteps: 0, saveSteps: 2,
    loraTargetModules: ['q_proj', 'v_proj'], progress: false, log: () => {}, ...extra,
  });
  await run(join(work, 'whole'));
  const checkpoint = join(work, 'whole', 'checkpoint-2');
  assert.equal(loadTokenizer(checkpoint).vocabSize, V + 2, 'checkpoints hold the tokenizer too');
  await run(join(work, 'resumed'), { resumeFromCheckpoint: checkpoint });
  const bytes = (dir: string) => readFileSync(join(work, dir, 'adapter_model.safetensors'));
  assert.ok(bytes('whole').equals(bytes('resumed')), 'the resumed run ends with the same adapter');
  await assert.rejects(run(join(work, 'forgot'), { resumeFromCheckpoint: checkpoint, newSpecialTokens: [] }),
    (e: Error) => e instanceof UserError && /checkpoint-2 was trained with other settings .*modules_to_save "embed_tokens,lm_head" there, "" now/.test(e.message));
  await assert.rejects(run(join(work, 'fewer'), { resumeFromCheckpoint: checkpoint, newSpecialTokens: ['<|im_start|>'] }),
    (e: Error) => e instanceof UserError && /checkpoint-2: .*embed_tokens.weight has shape \[\d+,64\], but this run's is .*pass the same --new_special_tokens/.test(e.message));
  await assert.rejects(run(join(work, 'other'), { resumeFromCheckpoint: checkpoint, newSpecialTokens: ['<|im_start|>', '<|eot|>'] }),
    (e: Error) => e instanceof UserError && /new_special_tokens "<\|im_start\|>,<\|im_end\|>" there, "<\|im_start\|>,<\|eot\|>" now/.test(e.message));
});

test('LoRA with new tokens on a base with tied embeddings is refused before anything is written', async () => {
  const tied = join(work, 'tied');
  await writeExampleModel(tied, () => {});
  const outputDir = join(work, 'tied-out');
  await assert.rejects(finetune({ baseModel: tied, dataPath: data, chatTemplate: 'chatml', outputDir, newSpecialTokens: NEW, backend: new JsBackend(), progress: false, log: () => {} }),
    (e: Error) => e instanceof UserError && /--new_special_tokens with LoRA .* tied embeddings .*: use --finetuning_type full/.test(e.message));
  assert.equal(existsSync(outputDir), false);
});

test('adapters whose vocabulary does not fit are one-line errors naming the file', async () => {
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
