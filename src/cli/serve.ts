// `alpaca-lora serve`: the seed's Gradio page and an OpenAI-compatible API over one base model and any
// number of adapters. Binds 127.0.0.1 unless --host asks for more. Parsing only; the server is server/.

import { existsSync, statSync } from 'node:fs';
import { selectBackend } from '../backends/select.ts';
import { parseCorsOrigins } from '../server/cors.ts';
import { PREFILL_CHUNK, PREFILL_IDLE_CHUNK } from '../generate/scheduler.ts';
import { DEFAULT_BATCH, loadServerContext } from '../server/load-context.ts';
import { bindServer, serveOn } from '../server/server.ts';
import { bnbConfigOf } from '../model/quantization-options.ts';
import { required, UsageError, type ParsedFlags } from './args.ts';
import type { Command } from './command.ts';
import { COMPUTE_DTYPE_FLAG, computeDtypeFrom } from './compute-dtype-flag.ts';
import { LOAD_8BIT_FLAG, noteQuantization, QUANT_FLAGS, quantizationFromFlags } from './quant-flags.ts';

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** The next SIGINT or SIGTERM. */
function nextSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      for (const s of SIGNALS) process.off(s, on);
      resolve(signal);
    };
    for (const s of SIGNALS) process.on(s, on);
  });
}

function positiveInt(flags: ParsedFlags, name: string, min = 1): number {
  const v = flags[name] as number;
  if (!Number.isInteger(v) || v < min) throw new UsageError(`serve: --${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

function adapterDirOf(flags: ParsedFlags): string | null {
  const dir = flags.adapter_dir as string | undefined;
  if (dir === undefined) return null;
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`serve: --adapter_dir ${dir} is not a folder: pass the folder that holds the adapter folders`);
  return dir;
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'web page and OpenAI-compatible API (/v1/completions, /v1/chat/completions, /v1/models)',
  flags: {
    base_model: { type: 'string', help: 'model folder (config.json, weights, tokenizer)' },
    lora_weights: { type: 'list', default: [], help: 'adapter folders, each DIR or NAME=DIR; requests pick one by "model" (default: the first)' },
    tokenizer: { type: 'string', help: 'folder with the tokenizer files, when not in --base_model' },
    prompt_template: { type: 'string', default: 'alpaca', help: 'template for the page and for chat without a chat_template' },
    host: { type: 'string', default: '127.0.0.1', help: 'address to bind; 0.0.0.0 exposes the model to the network' },
    server_name: { type: 'string', help: 'the seed\'s name for --host' },
    share_gradio: { type: 'boolean', default: false, help: 'the seed\'s flag, accepted: the page is never tunnelled to the internet (no public link); --host 0.0.0.0 serves the network' },
    port: { type: 'number', default: 7860, help: 'port (0: any free port)' },
    api_key: { type: 'string', help: 'require "Authorization: Bearer KEY" on the API (the page asks for it)' },
    adapter_dir: { type: 'string', help: 'POST /v1/adapters loads adapter folders only from under this folder (default: any folder; set it with --api_key when others can reach the server)' },
    queue_size: { type: 'number', default: 64, help: 'requests that may wait to join the running batch; more get 429' },
    max_batch_size: { type: 'number', help: `rows decoding together, when not given ${Object.entries(DEFAULT_BATCH).map(([b, n]) => `${n} on ${b}`).join(', ')} (continuous batching; prompts join in chunks of ${PREFILL_CHUNK} tokens per step while others decode, ${PREFILL_IDLE_CHUNK} when none does)` },
    max_kv_tokens: { type: 'number', help: 'KV cache tokens across running requests, each reserving prompt + max tokens; when not given max_batch_size x 4096 (allocated as used)' },
    max_prompt_tokens: { type: 'number', help: 'longest prompt accepted (default: the model\'s max_position_embeddings)' },
    max_tokens: { type: 'number', default: 2048, help: 'most new tokens a request may ask for' },
    max_n: { type: 'number', default: 8, help: 'most choices (prompts x n) per request' },
    cors_origin: { type: 'string', help: 'let browser pages from these origins call the API: an origin (http://localhost:3000), a comma-separated list, or * (default: none)' },
    log_prompts: { type: 'boolean', default: false, help: 'put each request\'s prompt in the access log (off: the log has method, path, status, tokens and ms only)' },
    shutdown_timeout: { type: 'number', default: 10, help: 'seconds that requests in flight may take to finish after SIGTERM/SIGINT before they are cancelled' },
    backend: { type: 'string', default: 'auto', help: 'js, cpu, cuda or auto' },
    dtype: { type: 'string', default: 'auto', help: 'weight storage: auto (f32 on js, as stored elsewhere), f32, bf16 or f16' },
    ...COMPUTE_DTYPE_FLAG,
    ...QUANT_FLAGS,
    ...LOAD_8BIT_FLAG,
  },
  async run(flags) {
    const baseModel = required('serve', flags, 'base_model');
    const dtype = flags.dtype as string;
    if (!['auto', 'f32', 'bf16', 'f16'].includes(dtype)) throw new UsageError(`serve: --dtype must be auto, f32, bf16 or f16, got "${dtype}"`);
    const port = flags.port as number;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`serve: --port must be an integer in 0..65535, got ${port}`);
    const graceS = flags.shutdown_timeout as number;
    if (!Number.isFinite(graceS) || graceS < 0) throw new UsageError(`serve: --shutdown_timeout must be a number of seconds >= 0, got ${graceS}`);
    const corsOrigins = flags.cors_origin === undefined ? null : parseCorsOrigins(flags.cors_origin as string);
    const settings = {
      queueSize: positiveInt(flags, 'queue_size', 0), maxTokens: positiveInt(flags, 'max_tokens'), maxN: positiveInt(flags, 'max_n'),
      maxPromptTokens: flags.max_prompt_tokens === undefined ? undefined : positiveInt(flags, 'max_prompt_tokens'),
      maxBatchSize: flags.max_batch_size === undefined ? undefined : positiveInt(flags, 'max_batch_size'),
      maxKvTokens: flags.max_kv_tokens === undefined ? undefined : positiveInt(flags, 'max_kv_tokens'),
      apiKey: flags.api_key as string | undefined, adapterDir: adapterDirOf(flags),
    };
    const quantize = bnbConfigOf(quantizationFromFlags(flags));
    const computeDtype = computeDtypeFrom('serve', flags);
    const host = (flags.server_name as string | undefined) ?? (flags.host as string);
    const bound = await bindServer(host, port); // a busy port fails here, before the model loads
    const ctx = await loadServerContext({
      ...settings, backend: selectBackend(flags.backend as string), baseModel, dtype: dtype as 'auto', quantize, computeDtype,
      loraWeights: flags.lora_weights as string[], tokenizer: flags.tokenizer as string | undefined, promptTemplate: flags.prompt_template as string,
    });
    noteQuantization(ctx.rt.model.quantization);
    const server = serveOn(bound, ctx, { corsOrigins, logPrompts: flags.log_prompts as boolean });
    if (flags.share_gradio) console.error(`note: --share_gradio makes no public link: the page is not tunnelled to the internet; it is at ${server.url} only (--host 0.0.0.0 serves it to your network)`);
    console.log(`serving ${[ctx.rt.baseName, ...ctx.rt.adapters.keys()].join(', ')} at ${server.url} (page: ${server.url}/, API: ${server.url}/v1)`);
    const signal = await nextSignal();
    console.error(`${signal}: shutting down: no new requests; those in flight may finish for ${graceS} s (--shutdown_timeout), then are cancelled; ${signal} again cancels them now`);
    const report = await server.shutdown(graceS * 1000, nextSignal());
    console.error(`stopped: ${report.finished} requests finished, ${report.cancelled} cancelled`);
  },
};
