// One generation request through the server's batch scheduler, tied to its HTTP response: refused at once when
// the queue is full, and cancelled (waiting or running) when the client disconnects. Also SSE writing.

import type { ServerResponse } from 'node:http';
import type { GenerationOptions } from '../generate/options.ts';
import { generateText, type TextResult } from '../generate/text.ts';
import type { LoraUse } from '../model/llama.ts';
import { logJob } from './access-log.ts';
import { holdAdapter } from './adapters-api.ts';
import type { ServerContext } from './context.ts';
import { watchQueuePosition } from './queue-position.ts';
import { untilShutdown } from './shutdown.ts';

export interface JobSpec {
  lora: LoraUse | null;
  prompts: number[][];
  options: GenerationOptions;
  onText?: (row: number, delta: string, tokens: number) => void;
  onStart?: () => void; // its turn came: generation begins
  onQueuePosition?: (position: number) => void; // while it waits: its place in line, 1 = next (queue-position.ts)
}

/**
 * Queues the job (throws QueueFullError synchronously when full). Resolves to the results, or to null when
 * the client went away first.
 */
export function submitJob(ctx: ServerContext, res: ServerResponse, spec: JobSpec): Promise<TextResult[] | null> {
  const controller = new AbortController();
  const onClose = () => {
    if (!res.writableEnded) controller.abort();
  };
  const { rt } = ctx;
  const signal = untilShutdown(res, controller.signal);
  const unwatch = watchQueuePosition(() => ctx.queue.positionOf(signal), spec.onQueuePosition);
  const onStart = () => (unwatch(), spec.onStart?.());
  const release = holdAdapter(ctx, spec.lora);
  let run: Promise<TextResult[]>;
  try {
    run = generateText(rt.model, spec.lora, rt.tokenizer, spec.prompts, spec.options, { signal, onText: spec.onText, onStart }, ctx.queue);
  } catch (err) {
    unwatch();
    release();
    throw err;
  }
  const logged = logJob(res);
  res.on('close', onClose);
  return run.then(
    (results) => {
      logged(results.reduce((sum, r) => sum + r.tokens.length, 0));
      return results.some((r) => r.finishReason === 'cancelled') ? null : results;
    },
    (err: unknown) => {
      logged(0);
      throw err;
    },
  ).finally(() => {
    unwatch();
    res.off('close', onClose);
    release();
  });
}

export function startEventStream(res: ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
}

/** One server-sent event: `data: <json>` (or the literal [DONE]). */
export function sendEvent(res: ServerResponse, data: unknown): void {
  if (!res.writableEnded) res.write(`data: ${data === '[DONE]' ? data : JSON.stringify(data)}\n\n`);
}
