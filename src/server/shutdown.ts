// Graceful shutdown of the HTTP server: stop accepting connections, refuse new requests (503), let the
// requests in flight finish until a deadline, then cancel those left (their generations stop; the client gets
// an SSE error event mid-stream, else a 503) and close every connection. Not signal handling (cli/serve.ts).

import type { Server, ServerResponse } from 'node:http';
import { errorBody } from './request-error.ts';

const SHUTDOWN_MESSAGE = 'the server is shutting down: this request was cancelled; retry when it is back';

export interface ShutdownReport {
  finished: number; // requests in flight that completed within the deadline
  cancelled: number; // requests ended at the deadline
}

/** Resolves after `ms`, or at once when `ms` is 0; `cancel` clears the timer so it holds no process open. */
function timer(ms: number): { done: Promise<void>; cancel: () => void } {
  let handle: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve) => (handle = setTimeout(resolve, ms)));
  return { done, cancel: () => clearTimeout(handle) };
}

function closed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => (res.closed ? resolve() : res.once('close', () => resolve())));
}

const cancellers = new WeakMap<ServerResponse, AbortController>();

/** `signal`, also aborted when shutdown cancels the request answered by `res`: its generation then stops. */
export function untilShutdown(res: ServerResponse, signal: AbortSignal): AbortSignal {
  const canceller = cancellers.get(res);
  return canceller ? AbortSignal.any([signal, canceller.signal]) : signal;
}

/** Ends one response at the deadline, telling the client why, and stops its generation. */
function cancel(res: ServerResponse): void {
  cancellers.get(res)?.abort();
  const body = errorBody(503, SHUTDOWN_MESSAGE, null, 'server_shutdown');
  if (res.headersSent) {
    res.end(`data: ${body}\n\n`); // only event streams send their headers before their end
    return;
  }
  res.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
  res.end(body);
}

/** The requests a server is answering, and its shutdown. */
export class InFlight {
  private readonly open = new Set<ServerResponse>();
  private stopping = false;
  private onDrained: (() => void) | null = null;

  get shuttingDown(): boolean {
    return this.stopping;
  }

  track(res: ServerResponse): void {
    this.open.add(res);
    cancellers.set(res, new AbortController());
    res.once('close', () => {
      this.open.delete(res);
      if (this.open.size === 0) this.onDrained?.();
    });
  }

  /** The 503 for a request that arrives on an open connection after shutdown began. */
  refuse(res: ServerResponse): void {
    cancel(res);
  }

  /**
   * Stops `server` accepting, waits up to `graceMs` (or until `now` resolves) for the requests in flight,
   * cancels the rest and closes every connection.
   */
  async shutdown(server: Server, graceMs: number, now: Promise<unknown> = new Promise(() => {})): Promise<ShutdownReport> {
    this.stopping = true;
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    for (const res of this.open) if (!res.headersSent) res.setHeader('Connection', 'close');
    const atStart = this.open.size;
    const deadline = timer(graceMs);
    const drained = new Promise<void>((resolve) => {
      this.onDrained = resolve;
      if (this.open.size === 0) resolve();
    });
    await Promise.race([drained, deadline.done, now]);
    deadline.cancel();
    const left = [...this.open];
    for (const res of left) cancel(res);
    const flush = timer(1000); // the cancellations' last bytes, before the sockets go
    await Promise.race([Promise.all(left.map(closed)), flush.done]);
    flush.cancel();
    server.closeAllConnections();
    await serverClosed;
    return { finished: atStart - left.length, cancelled: left.length };
  }
}
