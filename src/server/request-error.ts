// The error a request handler throws for a bad request, and its OpenAI-shaped JSON body:
// {"error": {"message", "type", "param", "code"}}. Not the HTTP plumbing (see server.ts).

export class RequestError extends Error {
  constructor(
    message: string,
    readonly param: string | null = null,
    readonly status = 400,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

const TYPES: Record<number, string> = {
  400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error', 404: 'invalid_request_error', 405: 'invalid_request_error',
  413: 'invalid_request_error', 429: 'rate_limit_error', 500: 'server_error', 503: 'server_error',
};

export function errorBody(status: number, message: string, param: string | null = null, code: string | null = null): string {
  return JSON.stringify({ error: { message, type: TYPES[status] ?? 'server_error', param, code } });
}
