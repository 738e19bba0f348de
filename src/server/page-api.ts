// The web page's own endpoints: GET /api/info (models, defaults, whether a key is needed) and
// POST /api/generate (instruction + input through the prompt template, as server-sent events: {"queue_position"}
// while it waits behind others (1 = next), then {"text", "tokens", "seconds"}, then {"done", "text",
// "finish_reason", "tokens", "seconds"}; seconds exclude queueing).

import { randomInt } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { optionsFromSettings } from '../generate/options.ts';
import { defaultModelId, pickAdapter, servedModels } from '../generate/runtime.ts';
import type { ServerContext } from './context.ts';
import { encodePrompt } from './encode-prompt.ts';
import { sendEvent, startEventStream, submitJob } from './job.ts';
import { sendJson } from './openai.ts';
import { RequestError } from './request-error.ts';
import { asObject, booleanField, checkFields, numberField, stringField } from './validate.ts';

/** The seed's Gradio defaults, but one beam: beams cannot stream, and the page shows text as it comes. */
export const PAGE_DEFAULTS = { temperature: 0.1, top_p: 0.75, top_k: 40, num_beams: 1, max_new_tokens: 128 };

export function pageInfo(ctx: ServerContext, res: ServerResponse): void {
  sendJson(res, 200, {
    models: servedModels(ctx.rt),
    default_model: defaultModelId(ctx.rt),
    template: ctx.rt.prompter.template.source,
    needs_key: ctx.apiKey !== null,
    max_new_tokens: ctx.limits.maxTokens,
    defaults: { ...PAGE_DEFAULTS, max_new_tokens: Math.min(PAGE_DEFAULTS.max_new_tokens, ctx.limits.maxTokens) },
  });
}

export async function pageGenerate(ctx: ServerContext, body: unknown, res: ServerResponse): Promise<void> {
  const b = asObject(body);
  checkFields(b, ['instruction', 'input', 'model', 'temperature', 'top_p', 'top_k', 'num_beams', 'max_new_tokens', 'repetition_penalty', 'stream', 'seed'], {});
  const instruction = stringField(b, 'instruction')?.trim();
  if (!instruction) throw new RequestError('"instruction" is required', 'instruction');
  let lora;
  try {
    lora = pickAdapter(ctx.rt, stringField(b, 'model'));
  } catch (err) {
    throw new RequestError((err as Error).message, 'model', 404, 'model_not_found');
  }
  const { rt } = ctx;
  const prompt = encodePrompt(ctx, rt.prompter.generatePrompt(instruction, stringField(b, 'input')), 'instruction');
  if (prompt.length > ctx.limits.maxPromptTokens) throw new RequestError(`the prompt is ${prompt.length} tokens; at most ${ctx.limits.maxPromptTokens}`, 'instruction');
  const topP = numberField(b, 'top_p', PAGE_DEFAULTS.top_p, { min: 0, max: 1 });
  if (topP === 0) throw new RequestError('"top_p" must be > 0', 'top_p');
  const options = optionsFromSettings({
    maxNewTokens: numberField(b, 'max_new_tokens', Math.min(PAGE_DEFAULTS.max_new_tokens, ctx.limits.maxTokens), { min: 1, max: ctx.limits.maxTokens, integer: true }),
    temperature: numberField(b, 'temperature', PAGE_DEFAULTS.temperature, { min: 0, max: 2 }),
    topP,
    topK: numberField(b, 'top_k', PAGE_DEFAULTS.top_k, { min: 0, integer: true }),
    numBeams: numberField(b, 'num_beams', PAGE_DEFAULTS.num_beams, { min: 1, max: 8, integer: true }),
    repetitionPenalty: numberField(b, 'repetition_penalty', 1, { min: 0.01, max: 10 }),
    seed: numberField(b, 'seed', randomInt(2 ** 31), { min: 0, max: 2 ** 53 - 1, integer: true }),
    stop: [rt.prompter.template.response_split],
  }, rt);
  const stream = booleanField(b, 'stream', true);
  let started = performance.now();
  let first = true;
  const job = submitJob(ctx, res, {
    lora, prompts: [prompt], options,
    onStart: () => (started = performance.now()),
    onQueuePosition: (position) => sendEvent(res, { queue_position: position }),
    onText: stream ? (_row, delta, tokens) => {
      const text = first ? delta.trimStart() : delta;
      first &&= text === '';
      if (text) sendEvent(res, { text, tokens, seconds: (performance.now() - started) / 1000 });
    } : undefined,
  });
  startEventStream(res);
  const results = await job;
  if (!results) return;
  const r = results[0]!;
  const seconds = (performance.now() - started) / 1000;
  sendEvent(res, { done: true, text: r.text.trim(), finish_reason: r.finishReason, tokens: r.tokens.length, seconds });
  res.end();
}
