// Fastify plugin for the access log: one ECS line per answered request (`request completed`) with
// the HTTP fields, the event categorisation, the caller's principal and the request's trace, so a
// request id or trace id found elsewhere leads to what was asked and how it ended.
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { serverSpanContextOf } from './http-tracing-plugin.ts';

/**
 * Routes polled by machines (probes every few seconds, scrapes every 15 s): logged at `debug`, so
 * they do not drown the requests of callers at the default level.
 */
const POLLED_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

/** Whether a line at `level` is written; pino loggers can tell, others are asked to write it. */
function isLevelEnabled(logger: object, level: string): boolean {
  const check = (logger as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled;
  return check === undefined || check.call(logger, level);
}

/** ECS fields of one answered request; exported for tests. */
export function accessLogFields(request: FastifyRequest, reply: FastifyReply): Record<string, unknown> {
  const route = request.routeOptions.url;
  const status = reply.statusCode;
  const fields: Record<string, unknown> = {
    'event.kind': 'event',
    'event.category': ['web'],
    'event.type': status >= 500 ? ['access', 'error'] : ['access'],
    'event.outcome': status >= 400 ? 'failure' : 'success',
    // ECS durations are nanoseconds.
    'event.duration': Math.round(reply.elapsedTime * 1e6),
    'http.request.method': request.method,
    ...(route === undefined ? {} : { 'http.route': route }),
    'url.path': request.originalUrl.split('?')[0] ?? '/',
    'http.response.status_code': status,
  };
  const principal = (request as { actor?: { principalId?: string } | null }).actor?.principalId;
  if (principal) fields['user.id'] = principal;
  // The server span has ended by now (its hook runs first) and the response may end outside its
  // context (a stream the client closed), so the span is looked up, not taken from the context.
  const spanContext = serverSpanContextOf(request);
  if (spanContext) {
    fields['trace.id'] = spanContext.traceId;
    fields['span.id'] = spanContext.spanId;
  }
  return fields;
}

/**
 * Returns the plugin; register it without encapsulation (the HTTP server's `plugins` option does)
 * so it sees every route. Lines are written at `info`, polled routes at `debug`.
 */
export function createHttpAccessLogPlugin(): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    // One logger for every line, with the request id as a field: a request's own logger is built
    // on first use (plugins/lazy-child-logger.ts), and building it for every request costs more
    // than the line itself. Without redaction: the line holds only the fields above (no header,
    // body or query string), and the redaction's wildcard paths cost about 13 µs of CPU per line,
    // three times the rest of it.
    const logger = app.log.child({ component: 'http' }, { redact: [] });
    app.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url;
      const level = route !== undefined && POLLED_ROUTES.has(route) ? 'debug' : 'info';
      // The fields are not worth gathering for a line that is dropped.
      if (isLevelEnabled(logger, level)) {
        logger[level]({ requestId: request.id, ...accessLogFields(request, reply) }, 'request completed');
      }
      done();
    });
  };
}
