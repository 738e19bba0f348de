// What `serve` builds before it answers: the runtime (model, adapters, tokenizer), the batch scheduler and its
// queue, and the request limits, as the handlers share them (context.ts). Not flag parsing (cli/serve.ts)
// and not HTTP (server.ts).

import { loadRuntime, type RuntimeOptions } from '../generate/runtime.ts';
import { BatchScheduler } from '../generate/scheduler.ts';
import { prepareChatTemplate } from './chat.ts';
import type { ServerContext } from './context.ts';

/** Rows per batch by backend: js computes slowly enough that a few rows already fill a step. */
export const DEFAULT_BATCH: Record<string, number> = { js: 4, cpu: 16, cuda: 32 };

export interface ServeSettings extends RuntimeOptions {
  queueSize: number; // requests that may wait to join the running batch
  maxBatchSize?: number; // rows decoding together (default: DEFAULT_BATCH for the backend)
  maxKvTokens?: number; // KV cache tokens across running requests (default: maxBatchSize x 4096)
  maxTokens: number; // new tokens per choice
  maxN: number; // choices per request
  maxPromptTokens?: number; // default: the model's max_position_embeddings
  apiKey?: string | null;
  adapterDir?: string | null; // POST /v1/adapters loads only folders under it
}

/** Loads the model and builds the context; a chat template that does not parse is reported through `warn`. */
export async function loadServerContext(s: ServeSettings, warn: (line: string) => void = console.error): Promise<ServerContext> {
  const rt = await loadRuntime(s);
  const broken = prepareChatTemplate(rt);
  if (broken) warn(`warning: the model's chat template does not parse (${broken.message}): /v1/chat/completions answers 500 until its chat_template is fixed`);
  const maxBatchSize = s.maxBatchSize ?? DEFAULT_BATCH[rt.model.be.name] ?? 8;
  return {
    rt,
    queue: new BatchScheduler(rt.model, { maxBatchSize, maxKvTokens: s.maxKvTokens ?? maxBatchSize * 4096, queueCapacity: s.queueSize }),
    limits: { maxTokens: s.maxTokens, maxN: s.maxN, maxBodyBytes: 1 << 20, maxPromptTokens: s.maxPromptTokens ?? rt.model.config.maxPositionEmbeddings },
    apiKey: s.apiKey || null,
    adapterDir: s.adapterDir ?? null,
    startedAt: Math.floor(Date.now() / 1000),
  };
}
