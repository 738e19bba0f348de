// What every request handler shares: the loaded runtime, the batch scheduler and its queue, the request limits and the
// optional API key. Types only.

import type { Runtime } from '../generate/runtime.ts';
import type { BatchScheduler } from '../generate/scheduler.ts';

export interface Limits {
  maxPromptTokens: number;
  maxTokens: number; // new tokens per choice
  maxN: number; // choices per request (prompts x n)
  maxBodyBytes: number;
}

export interface ServerContext {
  rt: Runtime;
  queue: BatchScheduler; // the running batch and the requests waiting to join it
  limits: Limits;
  apiKey: string | null;
  adapterDir: string | null; // POST /v1/adapters loads only folders under it (null: any folder)
  startedAt: number; // unix seconds, the `created` of /v1/models
}
