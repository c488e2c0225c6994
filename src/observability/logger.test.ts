// Logs: ECS JSON lines with the required keys, trace.id/span.id of the active span, redaction of
// secrets (checked with a known fake key), pretty output only on a development terminal.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import Fastify from 'fastify';
import { readOtelEnv } from '../config/otel-env.ts';
import { createLogger, type LoggerOptions, shouldLogPretty } from './logger.ts';
import { startTracing, type Tracing, withSpan } from './tracing.ts';

const FAKE_KEY = 'sk-test-FAKE-0123456789abcdef';
let tracing: Tracing;

before(() => {
  tracing = startTracing({
    serviceName: 'maos',
    serviceVersion: '1.2.3',
    otel: readOtelEnv({}),
    spanProcessors: [new SimpleSpanProcessor({ exporter: new InMemorySpanExporter() })],
  });
});
after(() => tracing.shutdown());

function capture(options: Partial<LoggerOptions> = {}) {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk) => {
    text += String(chunk);
  });
  const logger = createLogger({ level: 'info', serviceVersion: '1.2.3', destination: stream, ...options });
  const lines = async (): Promise<Array<Record<string, unknown>>> => {
    await new Promise((resolve) => setImmediate(resolve));
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  };
  return { logger, lines, raw: () => text };
}

describe('logger', () => {
  test('every line is ECS JSON with the required and service keys', async () => {
    const { logger, lines } = capture({ environment: 'staging', nodeName: 'node-a' });
    logger.info({ sessionId: 's1' }, 'session started');
    logger.error({ err: new TypeError('bad input') }, 'failed');
    const [info, error] = await lines();
    for (const line of [info, error]) {
      for (const key of [
        '@timestamp',
        'log.level',
        'message',
        'ecs.version',
        'service.name',
        'event.dataset',
      ]) {
        assert.ok(line && key in line, `line has ${key}`);
      }
    }
    assert.equal(info?.['service.version'], '1.2.3');
    assert.equal(info?.['service.environment'], 'staging');
    assert.equal(info?.['service.node.name'], 'node-a');
    assert.equal(info?.sessionId, 's1');
    assert.equal(info?.message, 'session started');
    assert.equal(error?.['log.level'], 'error');
    const ecsError = error?.error as Record<string, string>;
    assert.equal(ecsError.type, 'TypeError');
    assert.equal(ecsError.message, 'bad input');
    assert.match(ecsError.stack_trace ?? '', /TypeError: bad input/);
  });

  test('a plain value under an ECS object field is moved, so Elasticsearch does not refuse the line', async () => {
    // ECS maps host, url, error, source … as objects (every line has host.hostname, access lines
    // url.path): a line with `host: "127.0.0.1"` is a mapping conflict, and the document is dropped.
    const { logger, lines } = capture();
    logger.warn({ host: '127.0.0.1' }, 'auth.mode is "none"');
    logger.info({ url: 'http://127.0.0.1:7070', dataDir: '/d' }, 'server started');
    logger.warn({ error: 'HTTP 503', attempts: 2 }, 'webhook delivery attempt failed');
    logger.warn({ err: new Error('statfs failed'), source: 'dataDir' }, 'metrics source failed');
    logger.info({ event: ['a'], user: { id: 'u1' }, 'url.path': '/v1' }, 'structured');
    const [host, url, error, source, structured] = await lines();
    const OBJECTS = ['host', 'url', 'error', 'source', 'event', 'user', 'service', 'log', 'http'];
    for (const line of [host, url, error, source, structured]) {
      for (const key of OBJECTS) {
        const value = line?.[key];
        assert.ok(
          value === undefined || (typeof value === 'object' && value !== null && !Array.isArray(value)),
          `${key} of "${line?.message}" is an object or absent: ${JSON.stringify(value)}`,
        );
      }
    }
    assert.equal(host?.['labels.host'], '127.0.0.1');
    assert.equal(url?.['url.full'], 'http://127.0.0.1:7070');
    assert.equal(url?.dataDir, '/d');
    assert.equal(error?.['error.message'], 'HTTP 503');
    assert.equal(error?.attempts, 2);
    assert.equal(source?.['labels.source'], 'dataDir');
    assert.equal((source?.error as { message?: string } | undefined)?.message, 'statfs failed');
    assert.deepEqual(structured?.['labels.event'], ['a']);
    assert.deepEqual(structured?.user, { id: 'u1' });
    assert.equal(structured?.['url.path'], '/v1');
  });

  test("an error's causes are in its stack trace, a cycle of causes ends", async () => {
    const { logger, lines } = capture();
    const driver = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    logger.error({ err: new Error('The database write failed', { cause: driver }) }, 'request failed');
    const looping = new Error('outer');
    looping.cause = looping;
    logger.error({ err: looping }, 'cyclic');
    logger.error({ err: new Error('plain') }, 'no cause');
    const [wrapped, cyclic, plain] = (await lines()).map((line) => line.error as Record<string, string>);
    const wrappedError = wrapped ?? {};
    assert.equal(wrappedError.message, 'The database write failed');
    assert.match(
      wrappedError.stack_trace ?? '',
      /Error: The database write failed[\s\S]*\nCaused by: Error: database or disk is full\n/,
    );
    const cyclicTrace = cyclic?.stack_trace ?? '';
    assert.equal(cyclicTrace.split('Caused by:').length - 1, 4, 'bounded');
    assert.match(plain?.stack_trace ?? '', /Error: plain/);
    assert.doesNotMatch(plain?.stack_trace ?? '', /Caused by/);
  });

  test('log.logger names the component, the HTTP request or the service, once per line', async () => {
    const { logger, lines, raw } = capture();
    logger.info('root');
    const engine = logger.child({ component: 'engine', workerId: 'w1' });
    engine.child({ taskId: 't1' }).warn('task line');
    logger.child({ requestId: 'r1' }).info('request line');
    const [root, task, request] = await lines();
    assert.equal(root?.['log.logger'], 'maos');
    assert.equal(task?.['log.logger'], 'maos.engine');
    assert.equal(request?.['log.logger'], 'maos.http');
    for (const line of raw().trim().split('\n')) {
      assert.equal(line.split('"log.logger"').length - 1, 1, `one log.logger key: ${line}`);
    }
  });

  test('lines inside a span carry its trace.id and span.id; lines outside carry none', async () => {
    const { logger, lines } = capture();
    const span = tracing.tracer.startSpan('request');
    await withSpan(span, async () => {
      await new Promise((resolve) => setImmediate(resolve));
      logger.info('inside');
    });
    logger.info('outside');
    const [inside, outside] = await lines();
    assert.match(String(inside?.['trace.id']), /^[0-9a-f]{32}$/);
    assert.equal(inside?.['trace.id'], span.spanContext().traceId);
    assert.equal(inside?.['span.id'], span.spanContext().spanId);
    assert.equal(outside?.['trace.id'], undefined);
  });

  test('secrets never reach a line: fields, nested objects, headers of real requests', async () => {
    const { logger, lines, raw } = capture();
    logger.info({ apiKey: FAKE_KEY, token: FAKE_KEY, password: FAKE_KEY }, 'top level');
    logger.info(
      { provider: { apiKey: FAKE_KEY, secret: FAKE_KEY }, headers: { authorization: `Bearer ${FAKE_KEY}` } },
      'nested',
    );
    const app = Fastify({ loggerInstance: logger });
    app.get('/boom', async (request) => {
      request.log.error({ req: request, headers: request.headers }, 'handler failed');
      throw new Error('kaboom');
    });
    try {
      const response = await app.inject({
        url: '/boom',
        headers: {
          authorization: `Bearer ${FAKE_KEY}`,
          cookie: `session=${FAKE_KEY}`,
          'x-api-key': FAKE_KEY,
        },
      });
      assert.equal(response.statusCode, 500);
    } finally {
      await app.close();
    }
    const parsed = await lines();
    assert.ok(parsed.length >= 3);
    assert.ok(raw().includes('[REDACTED]'));
    assert.ok(!raw().includes(FAKE_KEY), 'the fake key appears in the log output');
  });

  test('pretty output only when asked, or on a terminal in development', async () => {
    const tty = Object.assign(new PassThrough(), { isTTY: true });
    assert.equal(shouldLogPretty({ format: 'auto', environment: 'development', destination: tty }), true);
    assert.equal(shouldLogPretty({ format: 'auto', environment: 'production', destination: tty }), false);
    assert.equal(
      shouldLogPretty({ format: 'auto', environment: 'development', destination: new PassThrough() }),
      false,
    );
    assert.equal(shouldLogPretty({ format: 'json', environment: 'development', destination: tty }), false);
    const { logger, raw } = capture({ format: 'pretty' });
    logger.info({ apiKey: FAKE_KEY }, 'human readable');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.match(raw(), /human readable/);
    assert.throws(() => JSON.parse(raw().split('\n')[0] ?? ''));
    assert.ok(!raw().includes(FAKE_KEY));
  });
});
