// Request ids: a valid incoming X-Request-Id is kept (so callers can correlate), anything else is
// replaced by a fresh id; the id is echoed on every response.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';

export const REQUEST_ID_HEADER = 'x-request-id';

/** Printable token characters only and a bounded length, so the id is safe in logs and headers. */
const VALID_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** Returns the caller's X-Request-Id when it is well formed, otherwise a new UUID. */
export function resolveRequestId(request: IncomingMessage): string {
  const incoming = request.headers[REQUEST_ID_HEADER];
  if (typeof incoming === 'string' && VALID_REQUEST_ID.test(incoming)) return incoming;
  return randomUUID();
}

/** Echoes the request id on every response (SSE streams add it themselves, see sse.ts). */
export function registerRequestIdEcho(app: FastifyInstance): void {
  // A callback hook: no promise per request on the hot path.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, String(request.id));
    done();
  });
}
