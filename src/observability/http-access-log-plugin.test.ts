// The access log: one `request completed` line per answered request with the ECS HTTP, event and
// user fields and the server span's ids; probes at debug; failures with event.outcome failure.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { useInMemoryTracing } from '../../test/fixtures/in-memory-tracing.ts';
import { createFakeSessionService } from '../http/fake-session-service.test-support.ts';
import { buildHttpServer } from '../http/server.ts';
import { createHttpAccessLogPlugin } from './http-access-log-plugin.ts';
import { createHttpTracingPlugin } from './http-tracing-plugin.ts';
import { createLogger } from './logger.ts';

const traces = useInMemoryTracing();

async function serve(level: string) {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk) => {
    text += String(chunk);
  });
  const service = createFakeSessionService();
  service.listSessions = async () => {
    throw new Error('the database went away');
  };
  const server = await buildHttpServer({
    config: { http: { bodyLimitBytes: 4096, maxPageSize: 5, sseKeepAliveSeconds: 15 } },
    service,
    logger: createLogger({ level, format: 'json', destination: stream }),
    readiness: async () => ({}),
    listRoles: () => [],
    plugins: [createHttpTracingPlugin({ tracer: traces.tracing.tracer }), createHttpAccessLogPlugin()],
  });
  const accessLines = async () => {
    await new Promise((resolve) => setImmediate(resolve));
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line.message === 'request completed');
  };
  return { server, accessLines };
}

describe('HTTP access log', () => {
  test('a line per request with HTTP, event, user and trace fields; probes only at debug', async () => {
    const { server, accessLines } = await serve('info');
    try {
      assert.equal((await server.inject({ url: '/v1/roles?x=secret-looking' })).statusCode, 400);
      assert.equal((await server.inject({ url: '/v1/sessions' })).statusCode, 500);
      assert.equal((await server.inject({ url: '/healthz' })).statusCode, 200);
    } finally {
      await server.close();
    }
    const lines = await accessLines();
    assert.equal(lines.length, 2, 'the probe is not logged at info');
    const [rejected, failed] = lines;
    assert.equal(rejected?.['log.level'], 'info');
    assert.equal(rejected?.['http.request.method'], 'GET');
    assert.equal(rejected?.['http.route'], '/v1/roles');
    assert.equal(rejected?.['url.path'], '/v1/roles', 'no query string: it may hold anything');
    assert.ok(!JSON.stringify(lines).includes('secret-looking'));
    assert.equal(rejected?.['log.logger'], 'maos.http');
    assert.match(String(rejected?.requestId), /^[0-9a-f-]{36}$/);
    assert.equal(rejected?.['http.response.status_code'], 400);
    assert.equal(rejected?.['event.outcome'], 'failure');
    assert.deepEqual(rejected?.['event.type'], ['access']);
    assert.deepEqual(failed?.['event.type'], ['access', 'error']);
    assert.equal(failed?.['user.id'], 'anonymous', 'the principal of auth mode none');
    const spans = traces.exporter.getFinishedSpans();
    traces.exporter.reset();
    const span = spans.find((candidate) => candidate.name === 'GET /v1/sessions');
    assert.ok(span);
    assert.equal(failed?.['trace.id'], span.spanContext().traceId);
    assert.equal(failed?.['span.id'], span.spanContext().spanId);
  });

  test('probes are logged at debug', async () => {
    const { server, accessLines } = await serve('debug');
    try {
      await server.inject({ url: '/healthz' });
    } finally {
      await server.close();
    }
    const [probe] = await accessLines();
    assert.equal(probe?.['log.level'], 'debug');
    assert.equal(probe?.['http.route'], '/healthz');
    assert.equal(probe?.['event.outcome'], 'success');
  });
});
