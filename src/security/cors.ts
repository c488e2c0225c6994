// CORS with an explicit allow-list: only configured browser origins get CORS headers; everyone
// else is same-origin only. Preflights are answered before authentication (they carry no token).
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface CorsOptions {
  allowedOrigins: readonly string[];
  maxAgeSeconds: number;
}

const ALLOWED_METHODS = 'GET, POST, PUT, PATCH, DELETE';
// The MCP headers: a browser MCP client (an origin in mcp.allowedOrigins too) sends them on /mcp.
// The W3C trace context: the server's spans continue a caller's traceparent, and a browser client
// instrumented to send it would otherwise have every call refused at the preflight.
const ALLOWED_HEADERS =
  'authorization, content-type, idempotency-key, last-event-id, mcp-protocol-version, mcp-session-id, traceparent, tracestate, x-api-key, x-request-id';
/**
 * Response headers a browser client needs to read (rate limits, ids, auth challenges, an audit
 * record not stored, the MCP session id that every request after `initialize` must send).
 */
const EXPOSED_HEADERS =
  'location, retry-after, ratelimit, ratelimit-policy, www-authenticate, x-request-id, maos-audit, mcp-session-id';

/** Returns the request's Origin when it is on the allow-list. */
export function matchAllowedOrigin(request: FastifyRequest, options: CorsOptions): string | null {
  const origin = request.headers.origin;
  if (typeof origin !== 'string') return null;
  return options.allowedOrigins.includes(origin) ? origin : null;
}

/** True when the request is a CORS preflight. */
export function isPreflight(request: FastifyRequest): boolean {
  return (
    request.method === 'OPTIONS' &&
    typeof request.headers.origin === 'string' &&
    typeof request.headers['access-control-request-method'] === 'string'
  );
}

/** Answers a preflight: 204 with CORS headers for an allowed origin, plain 204 otherwise. */
export function answerPreflight(
  request: FastifyRequest,
  reply: FastifyReply,
  options: CorsOptions,
): FastifyReply {
  const origin = matchAllowedOrigin(request, options);
  reply.header('vary', 'Origin');
  if (origin) {
    reply
      .header('access-control-allow-origin', origin)
      .header('access-control-allow-methods', ALLOWED_METHODS)
      .header('access-control-allow-headers', ALLOWED_HEADERS)
      .header('access-control-max-age', String(options.maxAgeSeconds));
  }
  return reply.code(204).send();
}

/** Adds CORS headers to an actual response for an allowed origin. */
export function applyCorsHeaders(request: FastifyRequest, reply: FastifyReply, options: CorsOptions): void {
  if (options.allowedOrigins.length === 0) return;
  reply.header('vary', 'Origin');
  const origin = matchAllowedOrigin(request, options);
  if (!origin) return;
  reply
    .header('access-control-allow-origin', origin)
    .header('access-control-expose-headers', EXPOSED_HEADERS);
}
