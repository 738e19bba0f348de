// One case of bench/cpu-decode.ts, in its own process: batch-1 greedy decoding of an HF folder on our js or cpu
// backend, or of its GGUF export on llama.cpp; prints one JSON line. Not the driver (cpu-decode.ts).

// A prompt of random ids is fed at once, then `newTokens` tokens are generated one by one and timed.
//   node --import tsx bench/decode-case.ts '<json: DecodeCase>'

import { JsBackend } from '../src/backends/js/index.ts';
import { cpuLoader } from '../src/backends/native/cpu.ts';
import type { Backend } from '../src/engine/backend.ts';
import { Rng } from '../src/engine/random.ts';
import { createDecoder, decodeBatch } from '../src/model/decode.ts';
import { kvBlocksFor } from '../src/model/kv-cache.ts';
import { loadModel } from '../src/model/load.ts';
import { packForInference } from '../src/model/pack.ts';
import { bnbConfigOf } from '../src/model/quantization-options.ts';

export interface DecodeCase {
  model: string; // label
  dir: string; // HF folder
  gguf?: string; // llama.cpp: the GGUF export of dir at this precision
  backend: 'js' | 'cpu' | 'llama.cpp';
  precision: 'f32' | 'bf16' | 'nf4' | 'int8'; // nf4 (+ double quant) and int8: the bf16 folder quantized on load
  promptTokens: number;
  newTokens: number;
  threads: number;
  vocabSize: number;
}

const c = JSON.parse(process.argv[2]!) as DecodeCase;
const rng = new Rng(7);
const prompt = Array.from({ length: c.promptTokens }, () => 3 + rng.int(c.vocabSize - 3));

async function ours(): Promise<{ seconds: number; tokens: number[]; details: string }> {
  let be: Backend, details: string;
  if (c.backend === 'js') {
    be = new JsBackend();
    details = 'plain TypeScript';
  } else {
    const cpu = cpuLoader.load(); // the GEMM kernels chosen as the commands choose them
    if ('unavailable' in cpu) throw new Error(`cpu backend: ${cpu.unavailable}`);
    be = cpu;
    details = cpu.describe();
  }
  const quantize = c.precision === 'nf4' ? { loadIn4bit: true, bnb4bitUseDoubleQuant: true } : { loadIn8bit: c.precision === 'int8' };
  const model = await loadModel(be, c.dir, c.precision === 'f32' || c.precision === 'bf16' ? { dtype: c.precision } : { dtype: 'bf16', quantize: bnbConfigOf(quantize) });
  packForInference(model); // as generate and serve hold it
  const d = createDecoder(model, kvBlocksFor(c.promptTokens + c.newTokens));
  const seq = { blocks: [], length: 0 };
  let next = (await decodeBatch(d, [{ seq, ids: prompt, lora: null, logits: 'argmax' }])).argmax[0]!;
  const tokens = [next];
  const t0 = performance.now();
  while (tokens.length < c.newTokens) {
    next = (await decodeBatch(d, [{ seq, ids: [next], lora: null, logits: 'argmax' }])).argmax[0]!;
    tokens.push(next);
  }
  return { seconds: (performance.now() - t0) / 1000, tokens, details };
}

async function llamaCpp(): Promise<{ seconds: number; tokens: number[]; details: string }> {
  const { getLlama } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  const model = await llama.loadModel({ modelPath: c.gguf! });
  const context = await model.createContext({ contextSize: c.promptTokens + c.newTokens + 8, threads: c.threads, batchSize: c.promptTokens });
  const tokens: number[] = [];
  let t0 = 0;
  for await (const token of context.getSequence().evaluate(prompt as never, { temperature: 0 })) {
    if (tokens.length === 0) t0 = performance.now();
    tokens.push(token as number);
    if (tokens.length === c.newTokens) break;
  }
  const seconds = (performance.now() - t0) / 1000;
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  return { seconds, tokens, details: `llama.cpp (node-llama-cpp), ${c.threads} threads` };
}

const r = c.backend === 'llama.cpp' ? await llamaCpp() : await ours();
console.log(JSON.stringify({
  model: c.model, backend: c.backend, precision: c.precision, threads: c.backend === 'js' ? 1 : c.threads, details: r.details,
  tokens_per_s: Number(((r.tokens.length - 1) / r.seconds).toFixed(1)),
  peak_rss_gib: Number((process.resourceUsage().maxRSS / 2 ** 20).toFixed(2)),
  first_tokens: r.tokens.slice(0, 8),
}));
