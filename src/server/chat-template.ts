// A model's chat template rendered in a worker thread with a time limit and a heap limit, so that a template that
// loops for ever or builds a huge string fails its request, not the server. @huggingface/jinja has no step or
// output budget of its own, hence the worker. The template is parsed once, up front. Not message checking (chat.ts).

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { Template } from '@huggingface/jinja';

/** How long one render may take, how much heap the worker may use, and the longest text it may return. */
export const RENDER_LIMITS = { ms: 5000, heapMb: 256, chars: 1 << 22 };

/** The template, compiled in the worker; `{ id, context }` is answered by `{ id, text }`, `{ id, error }` or `{ id, limit }`. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { Template } = require(workerData.jinja);
const template = new Template(workerData.source);
parentPort.on('message', ({ id, context }) => {
  try {
    const text = template.render(context);
    if (text.length > workerData.chars) parentPort.postMessage({ id, limit: 'it wrote ' + text.length + ' characters, more than ' + workerData.chars });
    else parentPort.postMessage({ id, text });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    parentPort.postMessage(err instanceof RangeError ? { id, limit: 'it built a value too large (' + message + ')' } : { id, error: message });
  }
});`;

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
  render(context: Record<string, unknown>): Promise<string> {
    const result = this.tail.then(() => this.renderNow(context));
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

  private renderNow(context: Record<string, unknown>): Promise<string> {
    const worker = (this.worker ??= this.start());
    const id = this.nextId++;
    return new Promise<string>((resolve, reject) => {
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
      const onMessage = (m: { id: number; text?: string; error?: string; limit?: string }) => {
        if (m.id !== id) return;
        done();
        if (m.error !== undefined) reject(new TemplateError(m.error));
        else if (m.limit !== undefined) reject(new TemplateLimitError(m.limit));
        else resolve(m.text!);
      };
      const onError = (err: Error) => fail(new TemplateLimitError(
        (err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY' ? `it needed more than ${this.limits.heapMb} MB` : err.message,
      ));
      const timer = setTimeout(() => fail(new TemplateLimitError(`it ran past ${this.limits.ms} ms`)), this.limits.ms);
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.postMessage({ id, context });
    });
  }
}
