// Continuous batching: one running batch over one model. A request's rows (greedy search or sampling) join the
// batch at a token boundary once a batch slot each and their KV reservation (prompt + max new tokens) are free,
// and leave as soon as they finish or their request is cancelled. Every step feeds each decoding row its last
// token plus at most PREFILL_CHUNK prompt tokens of rows still prefilling, so running streams keep flowing
// while a long prompt comes in (PREFILL_IDLE_CHUNK when no row decodes: then nobody waits on the step). Rows
// carry their own position, KV blocks, adapter, sampling settings and random stream. A beam search request
// holds numBeams slots and runs as its own batch (beam.ts).

import { hash32, Rng } from '../engine/random.ts';
import { UserError } from '../errors.ts';
import { createDecoder, decodeBatch, freeDecoder, type Decoder } from '../model/decode.ts';
import { kvBlocksFor, KV_BLOCK_TOKENS, type KvSeq } from '../model/kv-cache.ts';
import type { LoraUse, Model } from '../model/llama.ts';
import { AdmissionQueue, CancelledError, type Need } from './admission.ts';
import { beamSearch, beamKvBlocks } from './beam.ts';
import { yieldToEventLoop, type GenerateHooks, type Generated } from './hooks.ts';
import { checkOptions, strategyOf, type GenerationOptions } from './options.ts';
import { processesScores, processScores, warpScores } from './processors.ts';
import { argmax, sample } from './sampling.ts';

/** Prompt tokens fed per step across all rows still prefilling, while some row decodes. */
export const PREFILL_CHUNK = 64;
/** The same when no row decodes: prompts that arrive together go in one pass over the weights (8 x 32 tokens:
 *  one step of 256 instead of four of 64 took 10 ms instead of 18 on tiny-english, 2 Zen 4 cores). */
export const PREFILL_IDLE_CHUNK = 512;

export interface SchedulerLimits {
  maxBatchSize: number; // rows decoding together
  maxKvTokens: number; // KV cache time steps reserved across running requests
  queueCapacity: number; // requests that may wait; more are refused (QueueFullError)
}

interface Row {
  readonly prompt: readonly number[];
  readonly lora: LoraUse | null;
  readonly o: GenerationOptions;
  readonly history: number[]; // what the repetition penalty sees
  readonly rng: Rng;
  readonly seq: KvSeq;
  readonly out: Generated;
  readonly onToken: (id: number) => boolean | void;
  readonly request: Request;
  fed: number; // prompt tokens fed so far
  next: number; // the token to feed next once the prompt is in
}

interface Request {
  need: Need;
  signal: AbortSignal | undefined;
  left: number; // rows still running
  settle: (err: unknown) => void;
}

export class BatchScheduler {
  private readonly dec: Decoder;
  private readonly queue: AdmissionQueue;
  private readonly running: Row[] = [];
  private slots = 0;
  private blocks = 0;
  private looping = false;

  constructor(readonly model: Model, readonly limits: SchedulerLimits) {
    const maxBlocks = kvBlocksFor(limits.maxKvTokens);
    this.dec = createDecoder(model, maxBlocks);
    this.queue = new AdmissionQueue(
      limits.queueCapacity,
      (need) => (this.slots === 0 || this.slots + need.rows <= limits.maxBatchSize) && this.blocks + need.blocks <= maxBlocks,
      (need) => {
        this.slots += need.rows;
        this.blocks += need.blocks;
      },
    );
  }

  /** Requests waiting to join the batch. */
  get length(): number {
    return this.queue.length;
  }

  /** Whether any request is running. */
  get busy(): boolean {
    return this.slots > 0;
  }

  /** 1-based place in line of the request with this signal (0: running or unknown). */
  positionOf(signal: AbortSignal): number {
    return this.queue.positionOf(signal);
  }

  /**
   * One request: greedy search or sampling for each prompt (rows of the running batch), or a beam search per
   * prompt. Throws QueueFullError synchronously when the queue is full (and UserError for a request that can never
   * fit); a request cancelled while waiting resolves with finishReason 'cancelled' for every row.
   */
  generate(lora: LoraUse | null, prompts: readonly (readonly number[])[], o: GenerationOptions, hooks: GenerateHooks = {}): Promise<Generated[]> {
    checkRequest(this.model, prompts, o);
    const beam = strategyOf(o) === 'beam';
    const need: Need = beam
      ? { rows: o.numBeams, blocks: Math.max(...prompts.map((p) => beamKvBlocks(p.length, o))) }
      : { rows: prompts.length, blocks: prompts.reduce((s, p) => s + kvBlocksFor(p.length + o.maxNewTokens), 0) };
    const maxBlocks = kvBlocksFor(this.limits.maxKvTokens);
    if (need.blocks > maxBlocks) {
      throw new UserError(`the prompt${prompts.length > 1 ? 's' : ''} and max tokens need ${need.blocks} KV cache blocks of ${KV_BLOCK_TOKENS} tokens; this server holds ${maxBlocks} (raise --max_kv_tokens or ask for fewer tokens)`);
    }
    return this.queue.enter(need, hooks.signal).then(
      () => (hooks.onStart?.(), beam ? this.beams(lora, prompts, o, hooks, need) : this.rows(lora, prompts, o, hooks, need)),
      (err: unknown) => {
        if (err instanceof CancelledError) return prompts.map((): Generated => ({ tokens: [], finishReason: 'cancelled' }));
        throw err;
      },
    );
  }

  /** Frees the KV cache and step buffers (call when no request runs; they are freed whenever the batch empties too). */
  dispose(): void {
    freeDecoder(this.dec);
  }

  private async beams(lora: LoraUse | null, prompts: readonly (readonly number[])[], o: GenerationOptions, hooks: GenerateHooks, need: Need): Promise<Generated[]> {
    try {
      const out: Generated[] = [];
      for (const p of prompts) out.push(await beamSearch(this.model, lora, p, o, hooks));
      return out;
    } finally {
      this.leave(need);
    }
  }

  private rows(lora: LoraUse | null, prompts: readonly (readonly number[])[], o: GenerationOptions, hooks: GenerateHooks, need: Need): Promise<Generated[]> {
    const T = Math.max(...prompts.map((p) => p.length));
    return new Promise<Generated[]>((resolve, reject) => {
      const outs = prompts.map((): Generated => ({ tokens: [], finishReason: 'length' }));
      const request: Request = {
        need, signal: hooks.signal, left: prompts.length,
        settle: (err) => (err ? reject(err) : resolve(outs)),
      };
      prompts.forEach((prompt, b) => this.running.push({
        prompt, lora, o,
        history: [...new Array<number>(T - prompt.length).fill(o.padTokenId), ...prompt], // HF penalises a batch's padding too
        rng: new Rng(b === 0 ? o.seed : hash32(o.seed, b)),
        seq: { blocks: [], length: 0 },
        out: outs[b]!,
        onToken: (id) => hooks.onToken?.(b, id),
        request, fed: 0, next: -1,
      }));
      this.kick();
    });
  }

  private kick(): void {
    if (this.looping) return;
    this.looping = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      await this.steps();
    } finally {
      this.looping = false; // synchronously after the last step, so a kick from here on starts a new loop
      freeDecoder(this.dec); // idle: its step buffers go back (the next step allocates them again)
    }
    // A request admitted when the last rows were cancelled joined before `looping` was reset: its kick was lost.
    if (this.running.length) this.kick();
  }

  private async steps(): Promise<void> {
    while (this.running.length) {
      await yieldToEventLoop(); // requests submitted in the same turn join this step
      for (const r of this.running.filter((r) => r.request.signal?.aborted)) this.finish(r, 'cancelled');
      if (!this.running.length) break;
      const step = this.plan();
      try {
        const rows = step.map(({ row, ids }) => ({ seq: row.seq, ids, lora: row.lora, logits: this.wants(row) }));
        const out = await decodeBatch(this.dec, rows);
        const V = this.model.config.vocabSize;
        step.filter((_, i) => rows[i]!.logits).forEach(({ row }, j) => this.choose(row, out.argmax[j]!, out.logits.subarray(j * V, (j + 1) * V)));
      } catch (err) {
        for (const r of [...this.running]) this.fail(r, err);
      }
    }
  }

  /** This step's rows and their new tokens: every decoding row's last token, then prompt chunks in order. */
  private plan(): { row: Row; ids: number[] }[] {
    let budget = this.running.some((r) => r.fed === r.prompt.length) ? PREFILL_CHUNK : PREFILL_IDLE_CHUNK;
    const step: { row: Row; ids: number[] }[] = [];
    for (const row of this.running) {
      if (row.fed === row.prompt.length) {
        step.push({ row, ids: [row.next] });
        continue;
      }
      const take = Math.min(budget, row.prompt.length - row.fed);
      if (take === 0) continue;
      step.push({ row, ids: row.prompt.slice(row.fed, row.fed + take) });
      row.fed += take;
      budget -= take;
    }
    return step;
  }

  /** What the row needs from this step: its scores, only their argmax (greedy, nothing to process), or nothing yet. */
  private wants(row: Row): boolean | 'argmax' {
    if (row.fed < row.prompt.length) return false;
    return row.o.doSample || processesScores(row.o) ? true : 'argmax';
  }

  /**
   * Picks the row's next token from its scores (or takes their argmax, when it asked for only that) and ends the
   * row on EOS, a stop string or its length.
   */
  private choose(row: Row, greedy: number, scores: Float32Array): void {
    const o = row.o;
    let id = greedy;
    if (o.doSample) {
      warpScores(scores, row.history, o);
      id = sample(scores, row.rng);
    } else if (processesScores(o)) {
      processScores(scores, row.history, o);
      id = argmax(scores);
    }
    row.out.tokens.push(id);
    row.history.push(id);
    row.next = id;
    if (row.onToken(id) === true || o.eosTokenIds.includes(id)) this.finish(row, 'stop');
    else if (row.out.tokens.length === o.maxNewTokens) this.finish(row, 'length');
  }

  private finish(row: Row, reason: Generated['finishReason']): void {
    row.out.finishReason = reason;
    this.remove(row);
    if (--row.request.left === 0) {
      this.leave(row.request.need);
      row.request.settle(null);
    }
  }

  private fail(row: Row, err: unknown): void {
    this.remove(row);
    if (row.request.left > 0) {
      row.request.left = 0;
      this.leave(row.request.need);
      row.request.settle(err);
    }
  }

  private remove(row: Row): void {
    const i = this.running.indexOf(row);
    if (i >= 0) this.running.splice(i, 1);
    this.dec.pool.release(row.seq);
  }

  private leave(need: Need): void {
    this.slots -= need.rows;
    this.blocks -= need.blocks;
    this.queue.admit();
  }
}

/** Options in range and every prompt a non-empty list of ids in the vocabulary. */
export function checkRequest(m: Model, prompts: readonly (readonly number[])[], o: GenerationOptions): void {
  checkOptions(o);
  if (prompts.length === 0) throw new UserError('generate: no prompts');
  for (const p of prompts) {
    if (p.length === 0) throw new UserError('generate: a prompt needs at least one token');
    const bad = p.find((id) => !Number.isInteger(id) || id < 0 || id >= m.config.vocabSize);
    if (bad !== undefined) throw new UserError(`generate: token id ${bad} is outside the vocabulary (0..${m.config.vocabSize - 1})`);
  }
}
