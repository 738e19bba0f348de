// A real client reads our GGUF: llama.cpp (node-llama-cpp's prebuilt CPU build) loads tiny-english exported as
// f32, f16, bf16, q8_0, q6_k, q5_k_m, q4_k_m, q4_0 and q4_k, tokenizes the prompt as we do, and continues it greedily; f32, f16 and
// bf16 (tiny-english is stored bf16) must give our tokens exactly; for the quantized types the agreement is
// reported, and also the agreement with our engine run on our own dequantization of the same file; what must hold
// is that llama.cpp reads the blocks as we wrote them: at every prompt position its next-token distribution is
// within total variation 0.03 of ours on the dequantized weights, with the same top token. A LoRA adapter written with --adapter_only and applied by
// llama.cpp to the base GGUF, and the merged GGUF, must give the greedy tokens of our merged model.

import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getLlama, type Llama, type Token } from 'node-llama-cpp';
import { loadLlamaConfig } from '../../src/arch/llama-config.ts';
import { projectionFeatures, PROJECTIONS } from '../../src/arch/projections.ts';
import { JsBackend } from '../../src/backends/js/index.ts';
import { Rng } from '../../src/engine/random.ts';
import { exportGguf, readGgufAsHf } from '../../src/export/export-gguf.ts';
import { exportHf } from '../../src/export/export-hf.ts';
import type { OutType } from '../../src/export/gguf-model.ts';
import { makeAdapterConfig, writePeftAdapter } from '../../src/formats/peft-adapter.ts';
import { GgufFile } from '../../src/formats/gguf.ts';
import { writeSafetensors } from '../../src/formats/safetensors-write.ts';
import { expectedWeights, peftKey } from '../../src/formats/weight-names.ts';
import type { HostTensor } from '../../src/formats/host-tensor.ts';
import { generate } from '../../src/generate/generate.ts';
import { DEFAULT_OPTIONS } from '../../src/generate/options.ts';
import { scoreBatch } from '../../src/model/compute.ts';
import { loadModel } from '../../src/model/load.ts';
import { loadTokenizer } from '../../src/tokenizer/load.ts';
import { needShared, sharedPath } from '../helpers/shared.ts';

const NEW_TOKENS = 24;
const PROMPT = 'Once upon a time, there was a little';
const base = sharedPath('fixtures', 'pretrained', 'tiny-english');
const work = mkdtempSync(join(tmpdir(), 'gguf-llama-cpp-'));
let llama: Llama | undefined;
after(async () => {
  await llama?.dispose();
  rmSync(work, { recursive: true, force: true });
});

/** Our greedy continuation of `ids` by the HF model in `dir` (js backend, full float32 math). */
async function ourGreedy(dir: string, ids: number[]): Promise<number[]> {
  const m = await loadModel(new JsBackend(), dir);
  const [g] = await generate(m, null, [ids], { ...DEFAULT_OPTIONS, maxNewTokens: NEW_TOKENS });
  return g!.tokens;
}

/** llama.cpp's greedy continuation (temperature 0, one thread: a busy machine slows spinning thread pools badly). */
async function llamaGreedy(gguf: string, ids: number[], lora?: string): Promise<number[]> {
  llama ??= await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  const model = await llama.loadModel({ modelPath: gguf });
  try {
    const context = await model.createContext({ contextSize: 128, threads: 1, ...(lora ? { lora: { adapters: [{ filePath: lora }] } } : {}) });
    const out: number[] = [];
    for await (const token of context.getSequence().evaluate(ids as Token[], { temperature: 0 })) {
      out.push(token);
      if (out.length === NEW_TOKENS) break;
    }
    await context.dispose();
    return out;
  } finally {
    await model.dispose();
  }
}

/** Next-token probabilities after each prefix of `ids`, as llama.cpp computes them (temperature 1). */
async function llamaDistributions(gguf: string, ids: number[]): Promise<Map<Token, number>[]> {
  llama ??= await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  const model = await llama.loadModel({ modelPath: gguf });
  try {
    const context = await model.createContext({ contextSize: 128, threads: 1 });
    const out = await context.getSequence().controlledEvaluate(ids.map((id) => [id as Token, { generateNext: { probabilities: true } }]));
    await context.dispose();
    return ids.map((_, t) => out[t]!.next!.probabilities!);
  } finally {
    await model.dispose();
  }
}

/** The largest total variation distance between llama.cpp's and our next-token distributions over the prefixes of `ids`, and whether every top token agrees. */
async function distributionGap(gguf: string, dir: string, ids: number[]): Promise<{ tv: number; sameTop: boolean }> {
  const theirs = await llamaDistributions(gguf, ids);
  const m = await loadModel(new JsBackend(), dir);
  const V = m.config.vocabSize, T = ids.length;
  const logits = new Float32Array(T * V);
  await scoreBatch(m, { B: 1, T, inputIds: Int32Array.from(ids), attentionMask: null, labels: null }, null, (row0, _rows, chunk) => logits.set(chunk, row0 * V));
  let tv = 0, sameTop = true;
  for (let t = 0; t < T; t++) {
    const row = logits.subarray(t * V, (t + 1) * V);
    let max = -Infinity, top = 0, sum = 0;
    row.forEach((v, i) => { if (v > max) [max, top] = [v, i]; });
    const p = Float64Array.from(row, (v) => Math.exp(v - max));
    p.forEach((v) => (sum += v));
    let d = 0, covered = 0;
    for (const [token, q] of theirs[t]!) {
      d += Math.abs(q - p[token]! / sum);
      covered += p[token]! / sum;
    }
    tv = Math.max(tv, (d + 1 - covered) / 2);
    sameTop &&= theirs[t]!.keys().next().value === top;
  }
  return { tv, sameTop };
}

/** An HF folder of the weights as a GGUF file of ours holds them (quantized ones dequantized), for our engine. */
async function dequantizedFolder(gguf: string, out: string): Promise<string> {
  const config = loadLlamaConfig(base);
  const file = GgufFile.open(gguf);
  try {
    mkdirSync(out, { recursive: true });
    copyFileSync(join(base, 'config.json'), join(out, 'config.json'));
    await writeSafetensors(join(out, 'model.safetensors'), expectedWeights(config).map(({ name }) => [name, readGgufAsHf(file, config, name)]));
  } finally {
    file.close();
  }
  return out;
}

/** How many leading tokens agree. */
function agreement(a: number[], b: number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/** A seeded adapter on every projection, large enough to change the greedy text (r 8, alpha 16). */
async function syntheticAdapter(dir: string): Promise<void> {
  const config = loadLlamaConfig(base);
  const rng = new Rng(7);
  const tensors = new Map<string, HostTensor>();
  for (let l = 0; l < config.numLayers; l++) {
    for (const p of PROJECTIONS) {
      const { inFeatures, outFeatures } = projectionFeatures(config, p);
      const random = (n: number, std: number) => Float32Array.from({ length: n }, () => rng.normal() * std);
      tensors.set(peftKey(l, p, 'A'), { dtype: 'F32', shape: [8, inFeatures], data: random(8 * inFeatures, 1 / Math.sqrt(inFeatures)) });
      tensors.set(peftKey(l, p, 'B'), { dtype: 'F32', shape: [outFeatures, 8], data: random(outFeatures * 8, 0.02) });
    }
  }
  await writePeftAdapter(dir, makeAdapterConfig({ r: 8, loraAlpha: 16, loraDropout: 0, targetModules: [...PROJECTIONS] }), tensors);
}

describe('llama.cpp runs our GGUF of tiny-english', () => {
  let ids: number[] = [];
  let ours: number[] = [];
  before(async () => {
    if (!existsSync(base)) return; // each test below skips (or fails under CI) through needShared
    ids = loadTokenizer(base).encode(PROMPT);
    ours = await ourGreedy(base, ids);
  });

  test('the embedded vocabulary tokenizes the prompt as our tokenizer does', async (t) => {
    if (!needShared(t, 'fixtures', 'pretrained', 'tiny-english')) return;
    const gguf = join(work, 'f32.gguf');
    await exportGguf({ baseModel: base, outfile: gguf, outtype: 'f32' });
    llama ??= await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
    const model = await llama.loadModel({ modelPath: gguf });
    t.after(() => model.dispose());
    assert.deepEqual([model.tokens.bos, ...model.tokenize(PROMPT)], ids);
    assert.equal(model.detokenize(ours as Token[]), loadTokenizer(base).decode(ours));
  });

  for (const outtype of ['f32', 'f16', 'bf16', 'q8_0', 'q6_k', 'q5_k_m', 'q4_k_m', 'q4_0', 'q4_k'] as OutType[]) {
    const exact = outtype === 'f32' || outtype === 'f16' || outtype === 'bf16';
    test(`${outtype}: greedy continuation ${exact ? 'identical to ours' : 'agreement reported'}`, async (t) => {
      if (!needShared(t, 'fixtures', 'pretrained', 'tiny-english')) return;
      const gguf = join(work, `${outtype}.gguf`);
      await exportGguf({ baseModel: base, outfile: gguf, outtype, overwrite: true });
      const theirs = await llamaGreedy(gguf, ids);
      const agree = agreement(theirs, ours);
      t.diagnostic(`${outtype}: llama.cpp agrees with us on ${agree} of ${theirs.length} greedy tokens`);
      assert.ok(theirs.length >= 16, `llama.cpp stopped after ${theirs.length} tokens`);
      if (exact) return assert.deepEqual(theirs, ours.slice(0, theirs.length));
      // llama.cpp also rounds activations to 8 bits in quantized dot products, so exact agreement is not required;
      // a misread block layout would give gibberish, not a shared opening.
      const folder = await dequantizedFolder(gguf, join(work, `${outtype}-dequantized`));
      const same = agreement(theirs, await ourGreedy(folder, ids));
      t.diagnostic(`${outtype}: llama.cpp agrees with our engine on the dequantized ${outtype} weights on ${same} of ${theirs.length} tokens`);
      assert.ok(same >= 4, `${outtype}: llama.cpp and our dequantization part after ${same} tokens`);
      // Greedy paths part at near-ties; the distributions show whether llama.cpp's weights are ours (a misread block is far off).
      const { tv, sameTop } = await distributionGap(gguf, folder, ids);
      t.diagnostic(`${outtype}: over the ${ids.length} prompt positions, llama.cpp's next-token distribution is within total variation ${tv.toFixed(4)} of ours on the dequantized weights`);
      assert.ok(tv < 0.03 && sameTop, `${outtype}: llama.cpp's distributions differ from ours on the dequantized weights (total variation ${tv}, same top tokens: ${sameTop})`);
    });
  }

  test('a GGUF LoRA applied by llama.cpp, and the merged GGUF, continue as our merged model does', async (t) => {
    if (!needShared(t, 'fixtures', 'pretrained', 'tiny-english')) return;
    const adapter = join(work, 'adapter');
    await syntheticAdapter(adapter);
    const merged = join(work, 'merged-hf');
    await exportHf({ baseModel: base, loraWeights: adapter, outputDir: merged, dtype: 'F32', backend: new JsBackend() });
    const oursMerged = await ourGreedy(merged, ids);
    assert.ok(agreement(oursMerged, ours) < NEW_TOKENS, 'the adapter changes the greedy text');
    const baseGguf = join(work, 'base-f32.gguf');
    const loraGguf = join(work, 'lora.gguf');
    await exportGguf({ baseModel: base, outfile: baseGguf, outtype: 'f32' });
    await exportGguf({ baseModel: base, loraWeights: adapter, outfile: loraGguf, outtype: 'f32', adapterOnly: true });
    const withLora = await llamaGreedy(baseGguf, ids, loraGguf);
    t.diagnostic(`LoRA: llama.cpp base + GGUF LoRA agrees with our merged model on ${agreement(withLora, oursMerged)} of ${withLora.length} tokens`);
    assert.ok(withLora.length >= 16);
    assert.deepEqual(withLora, oursMerged.slice(0, withLora.length));
    const mergedGguf = join(work, 'merged-f32.gguf');
    await exportGguf({ baseModel: base, loraWeights: adapter, outfile: mergedGguf, outtype: 'f32' });
    assert.deepEqual(await llamaGreedy(mergedGguf, ids), oursMerged.slice(0, withLora.length));
  });
});
