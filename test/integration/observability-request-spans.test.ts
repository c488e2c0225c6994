// Requests the server refuses before any route runs — 401 from authentication, 503 during shutdown —
// still get a SERVER span in the caller's trace, and their log lines carry that trace's id.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createFakeSessionService } from '../../src/http/fake-session-service.test-support.ts';
import { buildHttpServer } from '../../src/http/server.ts';
import { createHttpTracingPlugin } from '../../src/observability/http-tracing-plugin.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { useInMemoryTracing } from '../fixtures/in-memory-tracing.ts';
import { captureLog } from '../fixtures/log-capture.ts';
import { sendDuringShutdown } from '../fixtures/request-during-shutdown.ts';

const traces = useInMemoryTracing();

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_SPAN_ID}-01`;

/** A JSON logger whose lines the test reads back. */
function capturedLogger() {
  const { destination, lines } = captureLog();
  return { lines, logger: createLogger({ level: 'debug', format: 'json', destination }) };
}

function serverSpanOf(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const span = spans.find((candidate) => candidate.name === name && candidate.kind === SpanKind.SERVER);
  assert.ok(span, `no SERVER span ${name} among ${spans.map((candidate) => candidate.name).join(', ')}`);
  return span;
}

describe('server spans of refused requests', () => {
  test('a 401 from authentication is a SERVER span in the incoming trace; its log line has trace.id', async () => {
    const exporter = new InMemorySpanExporter();
    const dataDir = mkdtempSync(join(tmpdir(), 'maos-obs-spans-'));
    const { lines, logger } = capturedLogger();
    const config = loadConfig({
      env: {},
      overrides: {
        dataDir,
        host: '127.0.0.1',
        port: 0,
        auth: { mode: 'apikey' },
        rateLimit: { enabled: false },
        workers: { concurrency: 0 },
        shutdown: { graceSeconds: 1 },
      },
    });
    const app = await createApp(config, { logger, spanProcessors: [new SimpleSpanProcessor({ exporter })] });
    try {
      const response = await app.http.inject({
        method: 'GET',
        url: '/v1/sessions',
        headers: { traceparent: TRACEPARENT },
      });
      assert.equal(response.statusCode, 401);
      const span = serverSpanOf(exporter.getFinishedSpans(), 'GET /v1/sessions');
      assert.equal(span.spanContext().traceId, TRACE_ID);
      assert.equal(span.parentSpanContext?.spanId, PARENT_SPAN_ID);
      assert.equal(span.attributes['http.response.status_code'], 401);
      const rejected = lines.find((line) => line.message === 'request rejected');
      assert.ok(rejected, JSON.stringify(lines));
      assert.equal(rejected['trace.id'], TRACE_ID);
      assert.equal(rejected['span.id'], span.spanContext().spanId);
    } finally {
      await app.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('a 503 during shutdown is a SERVER span in the incoming trace', async () => {
    const service = createFakeSessionService();
    const server = await buildHttpServer({
      config: { http: { bodyLimitBytes: 4096, maxPageSize: 5, sseKeepAliveSeconds: 15 } },
      service,
      logger: createLogger({ level: 'silent' }),
      readiness: async () => ({}),
      listRoles: () => [],
      plugins: [createHttpTracingPlugin({ tracer: traces.tracing.tracer })],
    });
    // The first request holds close() open; the second arrives on the same connection meanwhile.
    const received = await sendDuringShutdown(
      server,
      service,
      `GET /v1/roles HTTP/1.1\r\nHost: x\r\ntraceparent: ${TRACEPARENT}\r\n\r\n`,
    );
    assert.match(received, /HTTP\/1\.1 503/);
    const span = serverSpanOf(traces.exporter.getFinishedSpans(), 'GET /v1/roles');
    assert.equal(span.spanContext().traceId, TRACE_ID);
    assert.equal(span.attributes['http.response.status_code'], 503);
  });
});

test('a request with a method OTel does not know is a span named HTTP, with the method as sent', async () => {
  const server = await buildHttpServer({
    config: { http: { bodyLimitBytes: 4096, maxPageSize: 5, sseKeepAliveSeconds: 15 } },
    service: createFakeSessionService(),
    logger: createLogger({ level: 'silent' }),
    readiness: async () => ({}),
    listRoles: () => [],
    plugins: [createHttpTracingPlugin({ tracer: traces.tracing.tracer })],
  });
  try {
    traces.exporter.reset();
    const response = await server.inject({ method: 'PROPFIND', url: '/v1/roles' });
    assert.equal(response.statusCode, 405);
    // OTel HTTP conventions: http.request.method `_OTHER`, the span named `HTTP` (never `_OTHER`),
    // and the method as sent in http.request.method_original.
    const span = serverSpanOf(traces.exporter.getFinishedSpans(), 'HTTP');
    assert.equal(span.attributes['http.request.method'], '_OTHER');
    assert.equal(span.attributes['http.request.method_original'], 'PROPFIND');
    // A known method keeps its name and has no method_original.
    await server.inject({ method: 'GET', url: '/v1/roles' });
    const known = serverSpanOf(traces.exporter.getFinishedSpans(), 'GET /v1/roles');
    assert.equal(known.attributes['http.request.method_original'], undefined);
  } finally {
    await server.close();
  }
});
