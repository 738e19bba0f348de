// Autoregressive generation on token ids for a library call: greedy search, sampling or beam search for one
// or more prompts, run by a batch scheduler of its own sized for exactly these prompts (the server shares one
// scheduler between requests instead). Text, stop strings and streaming decode are text.ts.

import type { LoraUse, Model } from '../model/llama.ts';
import type { GenerateHooks, Generated } from './hooks.ts';
import { beamKvBlocks } from './beam.ts';
import { kvBlocksFor, KV_BLOCK_TOKENS } from '../model/kv-cache.ts';
import { strategyOf, type GenerationOptions } from './options.ts';
import { BatchScheduler, checkRequest } from './scheduler.ts';

export async function generate(
  m: Model, lora: LoraUse | null, prompts: readonly (readonly number[])[], options: GenerationOptions, hooks: GenerateHooks = {},
): Promise<Generated[]> {
  checkRequest(m, prompts, options);
  const beam = strategyOf(options) === 'beam';
  const blocks = beam
    ? Math.max(...prompts.map((p) => beamKvBlocks(p.length, options)))
    : prompts.reduce((s, p) => s + kvBlocksFor(p.length + options.maxNewTokens), 0);
  const scheduler = new BatchScheduler(m, { maxBatchSize: prompts.length, maxKvTokens: blocks * KV_BLOCK_TOKENS, queueCapacity: 0 });
  try {
    return await scheduler.generate(lora, prompts, options, hooks);
  } finally {
    scheduler.dispose();
  }
}
