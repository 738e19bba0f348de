// The access log of `serve`: one line per request when its response has closed and its generation ended (time,
// client address, method, path, status, new tokens generated, milliseconds to the response's end), and the
// prompt only when --log_prompts asks for it.
// Not the error log (server.ts prints failures on stderr).

import type { IncomingMessage, ServerResponse } from 'node:http';

interface Entry {
  tokens: number;
  prompt: string | null;
  jobs: number; // generations still running for it: its line waits for them, to count their tokens
  line: (() => void) | null; // set when the response has closed
}

const entries = new WeakMap<ServerResponse, Entry>();

/**
 * A generation for the request answered by `res` begins; call the result with its new tokens when it ends
 * (even after the client left: the line then waits for it). A no-op when the request is not being logged.
 */
export function logJob(res: ServerResponse): (tokens: number) => void {
  const entry = entries.get(res);
  if (!entry) return () => {};
  entry.jobs += 1;
  return (tokens) => {
    entry.tokens += tokens;
    entry.jobs -= 1;
    if (entry.jobs === 0) entry.line?.();
  };
}

/** The prompt fields of a generation request body, as they came, for --log_prompts. */
function promptOf(body: unknown): string | null {
  if (typeof body !== 'object' || body === null) return null;
  const b = body as Record<string, unknown>;
  const fields = ['prompt', 'messages', 'instruction', 'input'].filter((k) => b[k] !== undefined);
  return fields.length === 0 ? null : JSON.stringify(Object.fromEntries(fields.map((k) => [k, b[k]])));
}

export class AccessLog {
  constructor(
    private readonly write: (line: string) => void,
    private readonly logPrompts: boolean,
  ) {}

  /** Starts the entry of one request; its line is written when the response closes, finished or not. */
  begin(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const client = req.socket.remoteAddress ?? '-'; // the socket is gone once the response has closed
    const entry: Entry = { tokens: 0, prompt: null, jobs: 0, line: null };
    entries.set(res, entry);
    res.once('close', () => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const status = res.headersSent ? String(res.statusCode) : '-';
      const ms = Math.round(performance.now() - started);
      const closed = res.writableFinished ? '' : ' (client closed)';
      entry.line = () => {
        const prompt = entry.prompt === null ? '' : ` prompt=${entry.prompt}`;
        this.write(`${new Date().toISOString()} ${client} ${req.method} ${path} ${status} ${entry.tokens} tokens ${ms} ms${closed}${prompt}`);
      };
      if (entry.jobs === 0) entry.line();
    });
  }

  /** Records the request's prompt, when --log_prompts is on. */
  notePrompt(res: ServerResponse, body: unknown): void {
    const entry = entries.get(res);
    if (entry && this.logPrompts) entry.prompt = promptOf(body);
  }
}
