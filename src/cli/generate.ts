// `alpaca-lora generate`: the seed's generate.py without the web page (that is `serve`). One instruction
// (--instruction), raw token ids (--prompt_ids, printed back as JSON ids), or an interactive loop.
// Parsing and printing only; the work is generate/.

import { createInterface } from 'node:readline';
import { selectBackend } from '../backends/select.ts';
import { generate } from '../generate/generate.ts';
import { optionsFromSettings, type GenerationOptions } from '../generate/options.ts';
import { loadModelSet, loadRuntime, type ModelSet, type Runtime } from '../generate/runtime.ts';
import type { LoraUse } from '../model/llama.ts';
import { generateText } from '../generate/text.ts';
import { renderedTextEncoder } from '../data/encode-rendered.ts';
import { chatPrompt } from '../server/chat.ts';
import { bnbConfigOf } from '../model/quantization-options.ts';
import { required, UsageError, type FlagSpecs, type ParsedFlags } from './args.ts';
import type { Command } from './command.ts';
import { COMPUTE_DTYPE_FLAG, computeDtypeFrom } from './compute-dtype-flag.ts';
import { LOAD_8BIT_FLAG, noteQuantization, QUANT_FLAGS, quantizationFromFlags } from './quant-flags.ts';

const FLAGS: FlagSpecs = {
  base_model: { type: 'string', help: 'model folder (config.json, weights, tokenizer)' },
  lora_weights: { type: 'string', help: 'PEFT adapter folder to apply (unmerged)' },
  tokenizer: { type: 'string', help: 'folder with tokenizer.json or tokenizer.model, when not in --base_model' },
  prompt_template: { type: 'string', default: 'alpaca', help: 'template name (alpaca, alpaca_legacy, alpaca_short, vigogne) or JSON file; an adapter trained on chat data renders with the chat template saved beside it instead' },
  instruction: { type: 'string', help: 'the instruction; without it (or --prompt, --prompt_ids) an interactive loop runs' },
  input: { type: 'string', help: 'optional input for the instruction' },
  prompt: { type: 'string', help: 'raw prompt text (no template; BOS as the tokenizer adds it); prints the continuation' },
  prompt_ids: { type: 'string', help: 'raw prompt token ids, e.g. 1,2,3 (no template, no BOS added); prints the new ids as JSON' },
  temperature: { type: 'number', default: 0.1, help: 'sampling temperature; 0 = greedy search (with --num_beams 1)' },
  top_p: { type: 'number', default: 0.75, help: 'nucleus sampling: keep the most likely tokens up to this probability mass' },
  top_k: { type: 'number', default: 40, help: 'sampling: keep the k most likely tokens (0 = all)' },
  num_beams: { type: 'number', default: 4, help: 'beam search when > 1, whatever the temperature (temperature, top_p, top_k then do not apply)' },
  max_new_tokens: { type: 'number', default: 128, help: 'most tokens to generate' },
  repetition_penalty: { type: 'number', default: 1, help: 'HF repetition penalty (1 = off)' },
  stop: { type: 'list', default: [], help: 'stop strings, e.g. "[###,END]"' },
  stream: { type: 'boolean', default: false, help: 'print tokens as they are generated (beam search prints at the end)' },
  seed: { type: 'number', default: 0, help: 'sampling seed' },
  backend: { type: 'string', default: 'auto', help: 'js, cpu, cuda or auto' },
  dtype: { type: 'string', default: 'auto', help: 'weight storage: auto (f32 on js, as stored elsewhere), f32, bf16 or f16' },
  ...COMPUTE_DTYPE_FLAG,
  ...QUANT_FLAGS,
  ...LOAD_8BIT_FLAG,
};

/** Generation options from the flags, checked with the flags' own names. */
function optionsFrom(flags: ParsedFlags, rt: Pick<ModelSet, 'eosTokenIds' | 'padTokenId' | 'model'>): GenerationOptions {
  const n = (name: string) => flags[name] as number;
  const int = (name: string, min: number) => {
    if (!Number.isInteger(n(name)) || n(name) < min) throw new UsageError(`generate: --${name} must be an integer >= ${min}, got ${n(name)}`);
    return n(name);
  };
  if (n('temperature') < 0) throw new UsageError(`generate: --temperature must be >= 0 (0 = greedy), got ${n('temperature')}`);
  if (!(n('top_p') > 0 && n('top_p') <= 1)) throw new UsageError(`generate: --top_p must be in (0, 1], got ${n('top_p')}`);
  if (!(n('repetition_penalty') > 0)) throw new UsageError(`generate: --repetition_penalty must be > 0, got ${n('repetition_penalty')}`);
  const context = rt.model.config.maxPositionEmbeddings;
  if (n('max_new_tokens') > context) {
    throw new UsageError(`generate: --max_new_tokens ${n('max_new_tokens')} is more than the model's whole context (max_position_embeddings ${context}), and the KV cache would be sized for all of them: pass at most ${context}`);
  }
  const stop = flags.stop as string[];
  return optionsFromSettings({
    maxNewTokens: int('max_new_tokens', 1), temperature: n('temperature'), topP: n('top_p'), topK: int('top_k', 0),
    numBeams: int('num_beams', 1), repetitionPenalty: n('repetition_penalty'), seed: int('seed', 0), stop,
  }, rt);
}

function firstAdapter(set: ModelSet): LoraUse | null {
  return set.adapters.values().next().value ?? null;
}

function parseIds(text: string): number[] {
  const ids = text.replace(/^\[|\]$/g, '').split(',').map((s) => s.trim());
  if (ids.some((s) => !/^\d+$/.test(s))) throw new UsageError(`generate: --prompt_ids must be comma-separated token ids like 1,2,3, got "${text}"`);
  return ids.map(Number);
}

/**
 * Generates the response to one instruction: with the chat template an adapter was trained with, as that
 * conversation's one user turn (instruction and input joined by a newline, as training joins them); else in the
 * prompt template, whose response_split then stops it.
 */
async function respond(rt: Runtime, flags: ParsedFlags, instruction: string, input: string | undefined): Promise<void> {
  if (rt.adapterChatTemplates.size > 0) {
    const prompt = await chatPrompt(rt, [{ role: 'user', content: input ? `${instruction}\n${input}` : instruction }]);
    return complete(rt, flags, renderedTextEncoder(rt.tokenizer)(prompt.text), prompt.stop);
  }
  const prompt = rt.prompter.generatePrompt(instruction, input);
  return complete(rt, flags, rt.tokenizer.encode(prompt), [rt.prompter.template.response_split]);
}

/** Generates a continuation of the prompt `ids` and prints it, trimmed (streamed as it comes when asked). */
async function complete(rt: Runtime, flags: ParsedFlags, ids: number[], extraStops: string[]): Promise<void> {
  const o = optionsFrom(flags, rt);
  const options = { ...o, stop: [...o.stop, ...extraStops] };
  let started = false;
  const stream = flags.stream ? (_row: number, delta: string) => {
    const text = started ? delta : delta.trimStart();
    started ||= text.length > 0;
    process.stdout.write(text);
  } : undefined;
  const [result] = await generateText(rt.model, firstAdapter(rt), rt.tokenizer, [ids], options, { onText: stream });
  process.stdout.write(flags.stream ? '\n' : `${result!.text.trim()}\n`);
}

/** Reads instruction / input pairs from stdin (prompts on stderr) until end of input. */
async function interactive(rt: Runtime, flags: ParsedFlags): Promise<void> {
  const rl = createInterface({ input: process.stdin, terminal: false });
  const lines = rl[Symbol.asyncIterator]();
  const ask = async (question: string) => {
    process.stderr.write(question);
    const next = await lines.next();
    return next.done ? null : next.value.trim();
  };
  try {
    for (;;) {
      const instruction = await ask('Instruction: ');
      if (instruction === null) return;
      if (!instruction) continue;
      const input = await ask('Input (Enter for none): ');
      await respond(rt, flags, instruction, input || undefined);
    }
  } finally {
    rl.close();
  }
}

export const generateCommand: Command = {
  name: 'generate',
  summary: 'generate a response to an instruction (or continue raw token ids) with a model and adapter',
  flags: FLAGS,
  async run(flags) {
    const baseModel = required('generate', flags, 'base_model');
    const quantize = bnbConfigOf(quantizationFromFlags(flags));
    const backend = selectBackend(flags.backend as string);
    const dtype = flags.dtype as string;
    if (!['auto', 'f32', 'bf16', 'f16'].includes(dtype)) throw new UsageError(`generate: --dtype must be auto, f32, bf16 or f16, got "${dtype}"`);
    const load = {
      backend, baseModel, dtype: dtype as 'auto', quantize, computeDtype: computeDtypeFrom('generate', flags),
      loraWeights: flags.lora_weights ? [flags.lora_weights as string] : [],
      tokenizer: flags.tokenizer as string | undefined,
      promptTemplate: flags.prompt_template as string,
    };
    if (flags.prompt_ids !== undefined) {
      const ids = parseIds(flags.prompt_ids as string);
      const set = await loadModelSet(load);
      noteQuantization(set.model.quantization);
      const [result] = await generate(set.model, firstAdapter(set), [ids], optionsFrom(flags, set));
      console.log(JSON.stringify(result!.tokens));
      return;
    }
    const rt = await loadRuntime(load);
    noteQuantization(rt.model.quantization);
    if (flags.prompt !== undefined) {
      await complete(rt, flags, rt.tokenizer.encode(flags.prompt as string), []);
    } else if (flags.instruction !== undefined) {
      await respond(rt, flags, flags.instruction as string, flags.input as string | undefined);
    } else {
      await interactive(rt, flags);
    }
  },
};
