// The waiting line in front of the running batch: requests wait in order until the scheduler finds room for
// them (batch slots and KV blocks), at most `capacity` wait (more are refused at once), and one whose client
// goes away while waiting is dropped. Not the batch itself (scheduler.ts) and not HTTP.

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

/** What a request holds while it runs. */
export interface Need {
  rows: number; // batch slots
  blocks: number; // KV cache blocks reserved
}

interface Waiting {
  need: Need;
  start: () => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

export class AdmissionQueue {
  private readonly waiting: Waiting[] = [];

  /** `fits`: whether a request's need fits beside what runs now; `take`: the scheduler books it. */
  constructor(readonly capacity: number, private readonly fits: (need: Need) => boolean, private readonly take: (need: Need) => void) {}

  get length(): number {
    return this.waiting.length;
  }

  /** 1-based place in line of the request with this signal (0: not waiting). */
  positionOf(signal: AbortSignal): number {
    return this.waiting.findIndex((w) => w.signal === signal) + 1;
  }

  /**
   * Resolves when the request is admitted (at once when nothing waits and it fits). Throws QueueFullError at
   * once when `capacity` requests wait; rejects with CancelledError when `signal` aborts first.
   */
  enter(need: Need, signal: AbortSignal | undefined): Promise<void> {
    if (this.waiting.length === 0 && !signal?.aborted && this.fits(need)) {
      this.take(need);
      return Promise.resolve();
    }
    if (this.waiting.length >= this.capacity) throw new QueueFullError(this.capacity);
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(new CancelledError());
      const entry: Waiting = {
        need, signal,
        start: () => {
          signal?.removeEventListener('abort', entry.onAbort);
          resolve();
        },
        onAbort: () => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(new CancelledError());
        },
      };
      signal?.addEventListener('abort', entry.onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  /** Admits waiting requests in order while `fits` says the head fits (no overtaking). */
  admit(): void {
    while (this.waiting.length && this.fits(this.waiting[0]!.need)) {
      const entry = this.waiting.shift()!;
      this.take(entry.need);
      entry.start();
    }
  }
}
