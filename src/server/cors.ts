// Cross-origin access for browser clients (--cors_origin; off by default): answers to an allowed Origin carry
// Access-Control-Allow-Origin, and preflight OPTIONS requests are answered here, before the API key is checked
// (browsers send preflights without it). Not the routing (server.ts).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { UserError } from '../errors.ts';
import { errorBody } from './request-error.ts';

const ALLOW_METHODS = 'GET, POST, DELETE, OPTIONS';
const ALLOW_HEADERS = 'Authorization, Content-Type';
const PREFLIGHT_MAX_AGE_S = 600;

/** `--cors_origin`: `*` or a comma-separated list of origins (scheme://host[:port]). */
export function parseCorsOrigins(value: string): string[] {
  const origins = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (origins.length === 0) throw new UserError('serve: --cors_origin is empty: pass an origin such as http://localhost:3000, a comma-separated list, or *');
  for (const origin of origins) {
    if (origin === '*') continue;
    let parsed: string | null = null;
    try {
      parsed = new URL(origin).origin;
    } catch {
      parsed = null;
    }
    if (parsed !== origin) {
      throw new UserError(`serve: --cors_origin "${origin}" is not an origin: pass scheme://host[:port] with no path or trailing slash (e.g. http://localhost:3000), a comma-separated list of those, or *`);
    }
  }
  return origins;
}

/**
 * Adds the CORS headers for an allowed Origin; answers a preflight itself (204, or 403 for an origin not
 * allowed) and then returns true: the request is done.
 */
export function applyCors(allowed: readonly string[], req: IncomingMessage, res: ServerResponse): boolean {
  const origin = req.headers.origin;
  const ok = origin !== undefined && (allowed.includes('*') || allowed.includes(origin));
  if (ok) {
    res.setHeader('Access-Control-Allow-Origin', allowed.includes('*') ? '*' : origin);
    res.setHeader('Vary', 'Origin');
  }
  const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
  if (!preflight) return false;
  if (!ok) {
    const body = errorBody(403, `origin ${origin ?? '(none)'} is not allowed: the server's --cors_origin lists the origins that are`, null, 'cors_origin_not_allowed');
    res.writeHead(403, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    return true;
  }
  res.writeHead(204, {
    'Access-Control-Allow-Methods': ALLOW_METHODS,
    'Access-Control-Allow-Headers': ALLOW_HEADERS,
    'Access-Control-Max-Age': PREFLIGHT_MAX_AGE_S,
    'Content-Length': 0,
  });
  res.end();
  return true;
}
