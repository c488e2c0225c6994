// Fastify plugin for HTTP server spans (OTel HTTP semantic conventions): one SERVER span per
// request named `{method} {route}`, continuing the caller's W3C traceparent, active while the
// route runs so that log lines, database and GenAI spans nest under it.
import {
  context,
  propagation,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { markOutermost } from '../http/plugins/outermost.ts';
import { METRICS_PATH } from './http-metrics-plugin.ts';

const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'TRACE',
  'CONNECT',
]);

export interface HttpTracingPluginOptions {
  tracer: Tracer;
  /**
   * False when tracing is off (no exporter): then no hooks are registered at all, because even
   * no-op spans, context switches and traceparent parsing cost time on every request. @defaultValue true
   */
  enabled?: boolean;
}

const spans = new WeakMap<object, Span>();
/** Each traced request's server span context, kept after the span ended (for the access log). */
const spanContexts = new WeakMap<object, SpanContext>();

/** The server span context of a traced request, also once its span has ended; undefined when not traced. */
export function serverSpanContextOf(request: object): SpanContext | undefined {
  return spanContexts.get(request);
}

/**
 * Returns the plugin; register it without encapsulation so it wraps every route. It is marked
 * outermost: its span starts before the shutdown and authentication hooks, so the requests they
 * refuse (503, 401) are traced and their log lines carry `trace.id`.
 */
export function createHttpTracingPlugin(options: HttpTracingPluginOptions): FastifyPluginAsync {
  const { tracer } = options;
  return markOutermost(async (app: FastifyInstance) => {
    if (options.enabled === false) return;
    // A callback hook, so that everything after `done()` (later hooks, the handler and their
    // promise continuations) runs inside the span's context.
    app.addHook('onRequest', (request, reply, done) => {
      const route = request.routeOptions.url;
      if (route === METRICS_PATH) {
        done();
        return;
      }
      const known = KNOWN_METHODS.has(request.method);
      const method = known ? request.method : '_OTHER';
      // OTel HTTP conventions: a method it does not know names the span `HTTP`, not `_OTHER`.
      const nameMethod = known ? method : 'HTTP';
      const parent = propagation.extract(context.active(), request.headers);
      const span = tracer.startSpan(
        route ? `${nameMethod} ${route}` : nameMethod,
        {
          kind: SpanKind.SERVER,
          attributes: {
            'http.request.method': method,
            ...(known ? {} : { 'http.request.method_original': request.method }),
            'url.path': request.originalUrl.split('?')[0] ?? '/',
            'url.scheme': request.protocol,
            ...(route ? { 'http.route': route } : {}),
            ...(request.headers['user-agent']
              ? { 'user_agent.original': request.headers['user-agent'] }
              : {}),
          },
        },
        parent,
      );
      spans.set(request, span);
      spanContexts.set(request, span.spanContext());
      // An aborted request never reaches onResponse; end its span when the socket closes.
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished && spans.get(request) === span) {
          spans.delete(request);
          span.setAttribute('error.type', 'aborted');
          span.end();
        }
      });
      context.with(trace.setSpan(parent, span), done);
    });
    app.addHook('onError', async (request, _reply, error) => {
      spans.get(request)?.recordException(error);
    });
    app.addHook('onResponse', async (request, reply) => {
      const span = spans.get(request);
      if (span === undefined) return;
      spans.delete(request);
      span.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) {
        span.setAttribute('error.type', String(reply.statusCode));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    });
  });
}
