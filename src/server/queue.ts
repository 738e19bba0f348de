// The generation queue: one job runs at a time (the model and its backend are shared), at most `capacity`
// wait behind it, and a job whose client has gone is dropped while waiting or stopped while running.
// Not HTTP (see server.ts) and not generation itself.

export class QueueFullError extends Error {
  constructor(capacity: number) {
    super(`the server is busy: ${capacity} requests are already waiting; retry shortly`);
  }
}

export class CancelledError extends Error {
  constructor() {
    super('the request was cancelled');
  }
}

interface Waiting {
  start: () => void;
  signal: AbortSignal;
  onAbort: () => void;
}

export class GenerationQueue {
  private running = false;
  private readonly waiting: Waiting[] = [];

  constructor(readonly capacity: number) {}

  /** Requests waiting (not counting the one running). */
  get length(): number {
    return this.waiting.length;
  }

  get busy(): boolean {
    return this.running;
  }

  /**
   * Runs `job` when its turn comes. Throws QueueFullError at once when `capacity` jobs are waiting;
   * rejects with CancelledError when `signal` aborts before the job starts (the job itself sees the signal).
   */
  submit<T>(job: (signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T> {
    if (this.running && this.waiting.length >= this.capacity) throw new QueueFullError(this.capacity);
    return new Promise<T>((resolve, reject) => {
      const entry: Waiting = {
        signal,
        start: () => {
          signal.removeEventListener('abort', entry.onAbort);
          this.running = true;
          // A job that throws before returning its promise must still free the queue.
          Promise.resolve().then(() => job(signal)).then(resolve, reject).finally(() => {
            this.running = false;
            this.next();
          });
        },
        onAbort: () => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(new CancelledError());
        },
      };
      if (signal.aborted) return reject(new CancelledError());
      signal.addEventListener('abort', entry.onAbort, { once: true });
      this.waiting.push(entry);
      if (!this.running) this.next();
    });
  }

  private next(): void {
    const entry = this.waiting.shift();
    entry?.start();
  }
}
