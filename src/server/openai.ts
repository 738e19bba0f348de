// The OpenAI-compatible API: POST /v1/completions, POST /v1/chat/completions (JSON or SSE streaming) and
// GET /v1/models. Request fields follow OpenAI's; top_k, repetition_penalty, num_beams and ignore_eos are
// extensions. `model` picks the base model or one of the adapters. HTTP plumbing is server.ts.

import { randomInt, randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { optionsFromSettings, type GenerationOptions } from '../generate/options.ts';
import { defaultModelId, pickAdapter, servedModels } from '../generate/runtime.ts';
import type { TextResult } from '../generate/text.ts';
import { chatPrompt, parseMessages } from './chat.ts';
import type { ServerContext } from './context.ts';
import { encodePrompt } from './encode-prompt.ts';
import { sendEvent, startEventStream, submitJob } from './job.ts';
import { RequestError } from './request-error.ts';
import { asObject, booleanField, checkFields, numberField, stopField, stringField, type Body } from './validate.ts';

const SAMPLING_FIELDS = ['model', 'max_tokens', 'temperature', 'top_p', 'top_k', 'n', 'stream', 'stream_options', 'stop', 'seed', 'user', 'repetition_penalty', 'num_beams', 'ignore_eos'];
const NEUTRAL: Record<string, readonly unknown[]> = {
  frequency_penalty: [0], presence_penalty: [0], logprobs: [false], top_logprobs: [0], logit_bias: [{}], best_of: [1], echo: [false], suffix: [''],
};

export function listModels(ctx: ServerContext, res: ServerResponse): void {
  const ids = servedModels(ctx.rt);
  sendJson(res, 200, { object: 'list', data: ids.map((id) => ({ id, object: 'model', created: ctx.startedAt, owned_by: 'alpaca-lora' })) });
}

export async function completions(ctx: ServerContext, body: unknown, res: ServerResponse): Promise<void> {
  const b = asObject(body);
  checkFields(b, ['prompt', ...SAMPLING_FIELDS], NEUTRAL);
  const prompts = promptIds(ctx, b.prompt);
  await respond(ctx, b, prompts, 16, 'text_completion', res);
}

export async function chatCompletions(ctx: ServerContext, body: unknown, res: ServerResponse): Promise<void> {
  const b = asObject(body);
  checkFields(b, ['messages', 'max_completion_tokens', ...SAMPLING_FIELDS], { ...NEUTRAL, tools: [[]], tool_choice: ['none'], response_format: [{ type: 'text' }] });
  const prompt = await chatPrompt(ctx.rt, parseMessages(b.messages, 256), stringField(b, 'model'));
  const ids = encodePrompt(ctx, prompt.text, 'messages', prompt.addBos);
  checkPromptLength(ctx, ids, 'messages');
  if (b.max_completion_tokens !== undefined && b.max_tokens === undefined) b.max_tokens = b.max_completion_tokens;
  await respond(ctx, b, [ids], ctx.limits.maxTokens, 'chat.completion', res, prompt.stop);
}

type Kind = 'text_completion' | 'chat.completion';

async function respond(
  ctx: ServerContext, b: Body, prompts: number[][], defaultMaxTokens: number, kind: Kind,
  res: ServerResponse, extraStops: string[] = [],
): Promise<void> {
  const model = stringField(b, 'model') ?? defaultModelId(ctx.rt);
  let lora;
  try {
    lora = pickAdapter(ctx.rt, model);
  } catch (err) {
    throw new RequestError((err as Error).message, 'model', 404, 'model_not_found');
  }
  const n = numberField(b, 'n', 1, { min: 1, max: ctx.limits.maxN, integer: true });
  if (prompts.length * n > ctx.limits.maxN) throw new RequestError(`prompts x n = ${prompts.length * n} choices; at most ${ctx.limits.maxN} per request`, 'n');
  const options = generationOptions(ctx, b, defaultMaxTokens, extraStops);
  const stream = booleanField(b, 'stream', false);
  if (stream && options.numBeams > 1) {
    throw new RequestError('"stream" cannot be combined with "num_beams" > 1: beam search settles its text only at the end; ask without "stream"', 'num_beams');
  }
  const includeUsage = booleanField(asObject(b.stream_options ?? {}, 'stream_options'), 'include_usage', false) && stream;
  const rows = prompts.flatMap((p) => Array.from({ length: n }, () => p));
  const id = `${kind === 'chat.completion' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const chunkBase = { id, object: kind === 'chat.completion' ? 'chat.completion.chunk' : 'text_completion', created, model };
  const chunk = (row: number, text: string | null, finish: string | null) => ({
    ...chunkBase,
    choices: [kind === 'chat.completion'
      ? { index: row, delta: text === null ? {} : { content: text }, logprobs: null, finish_reason: finish }
      : { index: row, text: text ?? '', logprobs: null, finish_reason: finish }],
  });
  const job = submitJob(ctx, res, { lora, prompts: rows, options, onText: stream ? (row, delta) => sendEvent(res, chunk(row, delta, null)) : undefined });
  if (stream) {
    startEventStream(res);
    if (kind === 'chat.completion') rows.forEach((_, row) => sendEvent(res, { ...chunkBase, choices: [{ index: row, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] }));
  }
  const results = await job;
  if (!results) return;
  const usage = usageOf(prompts, results);
  if (stream) {
    results.forEach((r, row) => sendEvent(res, chunk(row, null, r.finishReason)));
    if (includeUsage) sendEvent(res, { ...chunkBase, choices: [], usage });
    sendEvent(res, '[DONE]');
    res.end();
    return;
  }
  const choices = results.map((r, index) => kind === 'chat.completion'
    ? { index, message: { role: 'assistant', content: r.text }, logprobs: null, finish_reason: r.finishReason }
    : { index, text: r.text, logprobs: null, finish_reason: r.finishReason });
  sendJson(res, 200, { id, object: kind, created, model, choices, usage });
}

function usageOf(prompts: number[][], results: TextResult[]) {
  const prompt = prompts.reduce((s, p) => s + p.length, 0);
  const completion = results.reduce((s, r) => s + r.tokens.length, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** OpenAI's sampling fields (plus our extensions) as generation options, within the server's limits. */
function generationOptions(ctx: ServerContext, b: Body, defaultMaxTokens: number, extraStops: string[]): GenerationOptions {
  const topP = numberField(b, 'top_p', 1, { min: 0, max: 1 });
  if (topP === 0) throw new RequestError('"top_p" must be > 0 (use "temperature": 0 for greedy search)', 'top_p');
  const settings = {
    maxNewTokens: numberField(b, 'max_tokens', Math.min(defaultMaxTokens, ctx.limits.maxTokens), { min: 1, max: ctx.limits.maxTokens, integer: true }),
    temperature: numberField(b, 'temperature', 1, { min: 0, max: 2 }),
    topP,
    topK: numberField(b, 'top_k', 0, { min: 0, integer: true }),
    numBeams: numberField(b, 'num_beams', 1, { min: 1, max: 8, integer: true }),
    repetitionPenalty: numberField(b, 'repetition_penalty', 1, { min: 0.01, max: 10 }),
    seed: numberField(b, 'seed', randomInt(2 ** 31), { min: 0, max: 2 ** 53 - 1, integer: true }),
    stop: [...stopField(b, 4), ...extraStops],
  };
  const ids = booleanField(b, 'ignore_eos', false) ? { eosTokenIds: [], padTokenId: ctx.rt.padTokenId } : ctx.rt;
  return optionsFromSettings(settings, { eosTokenIds: ids.eosTokenIds, padTokenId: ids.padTokenId });
}

/** `prompt`: a string, a list of token ids, or a list of either; each within the prompt limit. */
function promptIds(ctx: ServerContext, prompt: unknown): number[][] {
  const { model } = ctx.rt;
  const isIds = (p: unknown): p is number[] => Array.isArray(p) && p.length > 0 && p.every((x) => Number.isInteger(x));
  const list: unknown[] = typeof prompt === 'string' || isIds(prompt) ? [prompt] : Array.isArray(prompt) ? prompt : [];
  if (list.length === 0 || list.length > ctx.limits.maxN) {
    throw new RequestError(`"prompt" must be a string, a list of token ids, or a list of 1 to ${ctx.limits.maxN} of those`, 'prompt');
  }
  return list.map((p) => {
    if (typeof p === 'string') {
      const ids = encodePrompt(ctx, p, 'prompt');
      if (ids.length === 0) throw new RequestError('"prompt" is empty', 'prompt');
      return checkPromptLength(ctx, ids, 'prompt');
    }
    if (!isIds(p)) throw new RequestError('"prompt" must be a string, a list of token ids, or a list of those', 'prompt');
    const bad = p.find((id) => id < 0 || id >= model.config.vocabSize);
    if (bad !== undefined) throw new RequestError(`"prompt" holds token id ${bad}, outside the vocabulary (0..${model.config.vocabSize - 1})`, 'prompt');
    return checkPromptLength(ctx, p, 'prompt');
  });
}

function checkPromptLength(ctx: ServerContext, ids: number[], field: string): number[] {
  if (ids.length > ctx.limits.maxPromptTokens) {
    throw new RequestError(`the prompt is ${ids.length} tokens; this server takes at most ${ctx.limits.maxPromptTokens}`, field, 400, 'context_length_exceeded');
  }
  return ids;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
