// The one Jinja chat-template renderer, used by `serve` for requests and by training data (chat-tokenize.ts): the
// context a template sees (messages, special tokens, add_generation_prompt) is built here, and the template runs in
// a worker thread with a time limit and a heap limit, so that a template that loops for ever or builds a huge
// string fails its request (or names its record), not the process. @huggingface/jinja has no step or output
// budget of its own, hence the worker. The template is parsed once, up front. Not message checking.

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { Template } from '@huggingface/jinja';

/** How long one render may take, how much heap the worker may use, and the longest text it may return. */
export const RENDER_LIMITS = { ms: 5000, heapMb: 256, chars: 1 << 22 };

/** The template, compiled in the worker; `{ id, contexts }` is answered by `{ id, texts }`, `{ id, error }` or `{ id, limit }`. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { Template } = require(workerData.jinja);
const template = new Template(workerData.source);
parentPort.on('message', ({ id, contexts }) => {
  try {
    const texts = [];
    let chars = 0;
    for (const context of contexts) {
      const text = template.render(context);
      chars += text.length;
      if (chars > workerData.chars) return parentPort.postMessage({ id, limit: 'it wrote ' + chars + ' characters, more than ' + workerData.chars });
      texts.push(text);
    }
    parentPort.postMessage({ id, texts });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    parentPort.postMessage(err instanceof RangeError ? { id, limit: 'it built a value too large (' + message + ')' } : { id, error: message });
  }
});`;

/** The special tokens' text a template may use (`bos_token` …), as tokenizer_config.json gives them. */
export interface TemplateTokens {
  bos_token: string;
  eos_token: string;
  unk_token: string;
  pad_token: string;
}

/** The special tokens' text from tokenizer_config.json (a string or an AddedToken's content), '' when absent. */
export function templateTokens(tokenizerConfig: Record<string, unknown>): TemplateTokens {
  const token = (key: string) => {
    const v = tokenizerConfig[key];
    return typeof v === 'string' ? v : ((v as { content?: string } | null)?.content ?? '');
  };
  return { bos_token: token('bos_token'), eos_token: token('eos_token'), unk_token: token('unk_token'), pad_token: token('pad_token') };
}

/** What a chat template is rendered with, for serving (add_generation_prompt) and for training alike. */
export function chatContext(messages: readonly { role: string; content: string }[], tokens: TemplateTokens, addGenerationPrompt: boolean): Record<string, unknown> {
  return { messages, add_generation_prompt: addGenerationPrompt, ...tokens };
}

/** Thrown for a render the template itself refused (raise_exception, a bad expression): the request's fault. */
export class TemplateError extends Error {}

/** Thrown for a render that ran past the time or heap limit: the template's fault. */
export class TemplateLimitError extends Error {}

export class ChatTemplateRenderer {
  private worker: Worker | null = null;
  private tail: Promise<unknown> = Promise.resolve();
  private nextId = 0;

  /** Parses `source` (a SyntaxError here is the template's, reported at start). */
  constructor(readonly source: string, private readonly limits = RENDER_LIMITS) {
    new Template(source);
  }

  /** Renders with `context`, one render at a time. */
  async render(context: Record<string, unknown>): Promise<string> {
    return (await this.renderMany([context]))[0]!;
  }

  /** Renders each context in one trip to the worker (the limits apply to the whole batch). */
  renderMany(contexts: readonly Record<string, unknown>[]): Promise<string[]> {
    const result = this.tail.then(() => this.renderNow(contexts));
    this.tail = result.catch(() => {});
    return result;
  }

  close(): Promise<unknown> {
    const w = this.worker;
    this.worker = null;
    return w ? w.terminate() : Promise.resolve();
  }

  private start(): Worker {
    const jinja = createRequire(import.meta.url).resolve('@huggingface/jinja');
    const worker = new Worker(WORKER_SOURCE, {
      eval: true, workerData: { jinja, source: this.source, chars: this.limits.chars },
      resourceLimits: { maxOldGenerationSizeMb: this.limits.heapMb, maxYoungGenerationSizeMb: 32 },
    });
    worker.unref();
    return worker;
  }

  private renderNow(contexts: readonly Record<string, unknown>[]): Promise<string[]> {
    const worker = (this.worker ??= this.start());
    const id = this.nextId++;
    return new Promise<string[]>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
      };
      const fail = (err: Error) => {
        done();
        if (this.worker === worker) this.worker = null; // a fresh worker for the next render
        void worker.terminate();
        reject(err);
      };
      const onMessage = (m: { id: number; texts?: string[]; error?: string; limit?: string }) => {
        if (m.id !== id) return;
        done();
        if (m.error !== undefined) reject(new TemplateError(m.error));
        else if (m.limit !== undefined) reject(new TemplateLimitError(m.limit));
        else resolve(m.texts!);
      };
      const onError = (err: Error) => fail(new TemplateLimitError(
        (err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY' ? `it needed more than ${this.limits.heapMb} MB` : err.message,
      ));
      const timer = setTimeout(() => fail(new TemplateLimitError(`it ran past ${this.limits.ms} ms`)), this.limits.ms);
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.postMessage({ id, contexts });
    });
  }
}
