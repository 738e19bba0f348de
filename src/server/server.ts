// The HTTP server of `alpaca-lora serve`: binding (503 while the model loads), routing, the optional Bearer key,
// bounded JSON bodies, the page's static files, and turning every failure into a JSON error
// (400/401/404/405/413/429/500) rather than a crash; each request is logged (access-log.ts), may carry CORS
// headers (cors.ts) and is tracked for a graceful shutdown (shutdown.ts). The endpoints are openai.ts and page-api.ts.

import { createHash, timingSafeEqual } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';
import { AccessLog } from './access-log.ts';
import { addAdapter, removeAdapter } from './adapters-api.ts';
import type { ServerContext } from './context.ts';
import { applyCors } from './cors.ts';
import { chatCompletions, completions, listModels, sendJson } from './openai.ts';
import { pageGenerate, pageInfo } from './page-api.ts';
import { QueueFullError } from '../generate/admission.ts';
import { errorBody, RequestError } from './request-error.ts';
import { InFlight, type ShutdownReport } from './shutdown.ts';

const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));
const CONTENT_TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };

/** The page's files, read once: a fixed map, so no path from a request ever reaches the file system. */
function staticFiles(): Map<string, { type: string; body: Buffer }> {
  const files = new Map<string, { type: string; body: Buffer }>();
  for (const name of readdirSync(PUBLIC_DIR)) {
    const type = CONTENT_TYPES[extname(name)];
    if (type) files.set(`/${name}`, { type: `${type}; charset=utf-8`, body: readFileSync(join(PUBLIC_DIR, name)) });
  }
  files.set('/', files.get('/index.html')!);
  return files;
}

type Handler = (ctx: ServerContext, body: unknown, res: ServerResponse) => Promise<void>;
const POST_ROUTES: Record<string, Handler> = {
  '/v1/completions': completions,
  '/v1/chat/completions': chatCompletions,
  '/api/generate': pageGenerate,
  '/v1/adapters': addAdapter,
};

export interface ServeOptions {
  corsOrigins?: readonly string[] | null; // origins allowed cross-origin (cors.ts); null or absent: none
  logPrompts?: boolean; // put the prompt in the access log
  log?: (line: string) => void; // where access log lines go (default: stdout)
}

/** A bound port that answers 503 until `serveOn` gives it the model. */
export interface Bound {
  server: Server;
  url: string;
}

export interface Listening extends Bound {
  /** Stops accepting, lets requests in flight finish for up to `graceMs` (or until `now`), cancels the rest. */
  shutdown(graceMs?: number, now?: Promise<unknown>): Promise<ShutdownReport>;
}

/** Binds `host:port` before the model loads, so a busy port fails at once. */
export function bindServer(host: string, port: number): Promise<Bound> {
  const server = createServer((_req, res) => {
    const body = errorBody(503, 'the model is still loading; retry shortly', null, 'loading');
    res.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Retry-After': 5 });
    res.end(body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const { port: bound } = server.address() as AddressInfo;
      resolve({ server, url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}` });
    });
  });
}

/** Answers requests on `bound` with the loaded model. */
export function serveOn(bound: Bound, ctx: ServerContext, options: ServeOptions = {}): Listening {
  const files = staticFiles();
  const log = new AccessLog(options.log ?? ((line) => console.log(line)), options.logPrompts ?? false);
  const inFlight = new InFlight();
  const cors = options.corsOrigins ?? null;
  bound.server.removeAllListeners('request');
  bound.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    log.begin(req, res);
    if (cors && applyCors(cors, req, res)) return;
    if (inFlight.shuttingDown) return inFlight.refuse(res);
    inFlight.track(res);
    handle(ctx, files, log, req, res).catch((err: unknown) => fail(res, err));
  });
  return { ...bound, shutdown: (graceMs = 0, now) => inFlight.shutdown(bound.server, graceMs, now) };
}

export async function startServer(ctx: ServerContext, host: string, port: number, options: ServeOptions = {}): Promise<Listening> {
  return serveOn(await bindServer(host, port), ctx, options);
}

async function handle(ctx: ServerContext, files: ReturnType<typeof staticFiles>, log: AccessLog, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  const post = POST_ROUTES[path];
  const isApi = path.startsWith('/v1/') || path === '/api/generate';
  if (isApi && ctx.apiKey !== null && !sameSecret(req.headers.authorization ?? '', `Bearer ${ctx.apiKey}`)) {
    throw new RequestError('a valid API key is required: send "Authorization: Bearer <key>"', null, 401, 'invalid_api_key');
  }
  if (path.startsWith('/v1/adapters/')) {
    if (req.method !== 'DELETE') throw new RequestError(`${path} takes DELETE`, null, 405);
    return removeAdapter(ctx, decodeURIComponent(path.slice('/v1/adapters/'.length)), res);
  }
  if (post) {
    if (req.method !== 'POST') throw new RequestError(`${path} takes POST`, null, 405);
    const body = await readJson(req, ctx.limits.maxBodyBytes);
    log.notePrompt(res, body);
    return post(ctx, body, res);
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new RequestError(`${path} takes GET`, null, 405);
  if (path === '/v1/models') return listModels(ctx, res);
  if (path === '/api/info') return pageInfo(ctx, res);
  if (path === '/health') return sendJson(res, 200, { status: 'ok', running: ctx.queue.busy, waiting: ctx.queue.length });
  const file = files.get(path);
  if (!file) throw new RequestError(`no such path: ${path}`, null, 404);
  res.writeHead(200, { 'Content-Type': file.type, 'Content-Length': file.body.length, 'Cache-Control': 'no-cache' });
  res.end(req.method === 'HEAD' ? undefined : file.body);
}

/** Compares without leaking, through timing, how much of the key was right. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new RequestError(`the request body is over ${limit} bytes`, null, 413);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new RequestError(`the request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** The JSON error for `err`; mid-stream (headers sent) an SSE error event, then the end. */
function fail(res: ServerResponse, err: unknown): void {
  const [status, message, param, code] =
    err instanceof RequestError ? [err.status, err.message, err.param, err.code]
    : err instanceof QueueFullError ? [429, err.message, null, 'queue_full']
    : err instanceof UserError ? [400, err.message, null, null]
    : [500, 'internal error: see the server log', null, null];
  if (status === 500) console.error(err instanceof RequestError ? `error: ${err.message}` : err instanceof Error ? err.stack : err);
  if (res.headersSent) {
    if (!res.writableEnded) res.end(`data: ${errorBody(status, message, param, code)}\n\n`);
    return;
  }
  const body = errorBody(status, message, param, code);
  const headers: Record<string, string | number> = { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) };
  if (status === 429) headers['Retry-After'] = 1;
  if (status === 413) headers.Connection = 'close';
  res.writeHead(status, headers);
  res.end(body);
}
