// The batch span processor (OTEL_BSP_*) and span limit (OTEL_SPAN_*, OTEL_EVENT_*, OTEL_LINK_*,
// OTEL_ATTRIBUTE_*) variables: read in src/config, handed to the SDK by startTracing, since the
// trace SDK 3 reads no environment variable itself; an unusable value of these or of the other
// OTEL_* variables MAOS reads is ignored with a warning.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { trace } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { useInMemoryTracing } from '../../test/fixtures/in-memory-tracing.ts';
import { captureLog } from '../../test/fixtures/log-capture.ts';
import { startTestServer, type TestServer } from '../../test/fixtures/server.ts';
import { readOtelEnv } from '../config/otel-env.ts';
import { createBatchSpanProcessor, startTracing } from './tracing.ts';

describe('reading OTEL_BSP_* and the span limits', () => {
  test('unset or empty: nothing is set (the SDK defaults apply) and nothing is warned about', () => {
    for (const env of [{}, { OTEL_BSP_MAX_QUEUE_SIZE: ' ', OTEL_ATTRIBUTE_COUNT_LIMIT: '' }]) {
      const otel = readOtelEnv(env);
      assert.deepEqual(otel.batchSpanProcessor, {});
      assert.deepEqual(otel.spanLimits, {});
      assert.deepEqual(otel.warnings, []);
    }
  });

  test('every variable is read; a span, event or link limit wins over the general one', () => {
    const otel = readOtelEnv({
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_BSP_EXPORT_TIMEOUT: '4000',
      OTEL_BSP_MAX_QUEUE_SIZE: '100',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: ' 10 ',
      OTEL_ATTRIBUTE_COUNT_LIMIT: '20',
      OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: '300',
      OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: '30',
      OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT: '400',
      OTEL_SPAN_EVENT_COUNT_LIMIT: '0',
      OTEL_SPAN_LINK_COUNT_LIMIT: '5',
      OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT: '6',
    });
    assert.deepEqual(otel.batchSpanProcessor, {
      scheduledDelayMillis: 200,
      exportTimeoutMillis: 4000,
      maxQueueSize: 100,
      maxExportBatchSize: 10,
    });
    assert.deepEqual(otel.spanLimits, {
      attributeCountLimit: 30,
      attributeValueLengthLimit: 400,
      eventCountLimit: 0,
      linkCountLimit: 5,
      attributePerEventCountLimit: 6,
      // No OTEL_LINK_ATTRIBUTE_COUNT_LIMIT: the general limit.
      attributePerLinkCountLimit: 20,
    });
    assert.deepEqual(otel.warnings, []);
    assert.deepEqual(readOtelEnv({ OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: '8' }).spanLimits, {
      attributeValueLengthLimit: 8,
    });
  });

  test('OTEL_BSP_EXPORT_TIMEOUT=0 is no limit: the longest timer Node has', () => {
    assert.equal(
      readOtelEnv({ OTEL_BSP_EXPORT_TIMEOUT: '0' }).batchSpanProcessor.exportTimeoutMillis,
      2 ** 31 - 1,
    );
  });

  test('an unusable value is ignored, as if unset, with a warning naming the variable and the value', () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ OTEL_BSP_MAX_QUEUE_SIZE: 'lots' }, /^OTEL_BSP_MAX_QUEUE_SIZE="lots" is not a positive integer/],
      [{ OTEL_BSP_MAX_QUEUE_SIZE: '0' }, /^OTEL_BSP_MAX_QUEUE_SIZE="0" is not a positive integer/],
      [{ OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '-1' }, /^OTEL_BSP_MAX_EXPORT_BATCH_SIZE="-1" is not/],
      [{ OTEL_BSP_SCHEDULE_DELAY: '1.5' }, /^OTEL_BSP_SCHEDULE_DELAY="1.5" is not a non-negative integer/],
      [{ OTEL_BSP_SCHEDULE_DELAY: '5s' }, /^OTEL_BSP_SCHEDULE_DELAY="5s" is not/],
      // Past Node's longest timer, which would fire after 1 ms instead.
      [
        { OTEL_BSP_EXPORT_TIMEOUT: '2147483648' },
        /^OTEL_BSP_EXPORT_TIMEOUT="2147483648" is not .* up to 2147483647/,
      ],
      [{ OTEL_SPAN_LINK_COUNT_LIMIT: '1e3' }, /^OTEL_SPAN_LINK_COUNT_LIMIT="1e3" is not/],
      // The SDK reads a value length of 0 as no limit at all.
      [
        { OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT: '0' },
        /^OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT="0" is not a positive/,
      ],
      [{ OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT: '0x10' }, /^OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT="0x10" is not/],
    ];
    for (const [env, warning] of cases) {
      const otel = readOtelEnv(env);
      assert.deepEqual(otel.batchSpanProcessor, {}, JSON.stringify(env));
      assert.deepEqual(otel.spanLimits, {}, JSON.stringify(env));
      assert.equal(otel.warnings.length, 1, JSON.stringify(env));
      assert.match(otel.warnings[0] ?? '', warning);
      assert.match(otel.warnings[0] ?? '', /: ignored, as if unset$/);
    }
  });

  test('a specific limit that is unusable leaves the general one in force', () => {
    const otel = readOtelEnv({ OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: 'ten', OTEL_ATTRIBUTE_COUNT_LIMIT: '12' });
    assert.equal(otel.spanLimits.attributeCountLimit, 12);
    assert.equal(otel.warnings.length, 1);
  });

  test('a batch larger than the queue is ignored: the queue set, or the default 2048', () => {
    const small = readOtelEnv({ OTEL_BSP_MAX_QUEUE_SIZE: '8', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '9' });
    assert.deepEqual(small.batchSpanProcessor, { maxQueueSize: 8 });
    assert.deepEqual(small.warnings, [
      'OTEL_BSP_MAX_EXPORT_BATCH_SIZE=9 is larger than the queue (OTEL_BSP_MAX_QUEUE_SIZE, 8): ignored, as if unset',
    ]);
    const large = readOtelEnv({ OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '4096' });
    assert.deepEqual(large.batchSpanProcessor, {});
    assert.match(large.warnings[0] ?? '', /\(OTEL_BSP_MAX_QUEUE_SIZE, 2048\)/);
    assert.deepEqual(readOtelEnv({ OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2048' }).warnings, []);
  });

  test('an unsupported sampler, or a ratio sampler argument out of range, is warned about too', () => {
    assert.deepEqual(readOtelEnv({ OTEL_TRACES_SAMPLER: 'xray' }).warnings, [
      'OTEL_TRACES_SAMPLER="xray" is not a sampler MAOS supports (always_on, always_off, traceidratio, each also with parentbased_): ignored, parentbased_always_on applies',
    ]);
    assert.deepEqual(
      readOtelEnv({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' })
        .warnings,
      ['OTEL_TRACES_SAMPLER_ARG="1.5" is not a ratio from 0 to 1: ignored, 1 applies'],
    );
    // Samplers without an argument ignore it, as the specification has it.
    assert.deepEqual(
      readOtelEnv({ OTEL_TRACES_SAMPLER: 'always_on', OTEL_TRACES_SAMPLER_ARG: 'x' }).warnings,
      [],
    );
  });

  test('an exporter MAOS does not have is otlp, a boolean neither true nor false is false; both warned about', () => {
    const zipkin = readOtelEnv({ OTEL_TRACES_EXPORTER: 'Zipkin' });
    assert.equal(zipkin.tracesExporter, 'otlp');
    assert.deepEqual(zipkin.warnings, [
      'OTEL_TRACES_EXPORTER="Zipkin" is not an exporter MAOS has (otlp, console, none): otlp applies',
    ]);
    const two = readOtelEnv({ OTEL_TRACES_EXPORTER: 'console, otlp' });
    assert.equal(two.tracesExporter, 'console');
    assert.deepEqual(two.warnings, [
      'OTEL_TRACES_EXPORTER="console, otlp" lists more than one exporter: only the first, "console", is used',
    ]);
    const yes = readOtelEnv({
      OTEL_SDK_DISABLED: '1',
      OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'yes',
    });
    assert.equal(yes.sdkDisabled, false);
    assert.equal(yes.captureMessageContent, false);
    assert.deepEqual(yes.warnings, [
      'OTEL_SDK_DISABLED="1" is neither true nor false: false applies',
      'OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="yes" is neither true nor false: false applies',
    ]);
    const fine = readOtelEnv({
      OTEL_TRACES_EXPORTER: 'NONE',
      OTEL_SDK_DISABLED: 'False',
      OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'TRUE',
    });
    assert.equal(fine.tracesExporter, 'none');
    assert.equal(fine.captureMessageContent, true);
    assert.deepEqual(fine.warnings, []);
  });

  test('OTEL_RESOURCE_ATTRIBUTES with a malformed pair is ignored as a whole, with a warning', () => {
    const fine = readOtelEnv({ OTEL_RESOURCE_ATTRIBUTES: ' a = 1 ,, b=x%20y=z, ' });
    assert.deepEqual(fine.resourceAttributes, { a: '1', b: 'x y=z' });
    assert.deepEqual(fine.warnings, []);
    const noValue = readOtelEnv({ OTEL_RESOURCE_ATTRIBUTES: 'a=1,team,b=2' });
    assert.deepEqual(noValue.resourceAttributes, {});
    assert.deepEqual(noValue.warnings, [
      'OTEL_RESOURCE_ATTRIBUTES has "team", which is not key=value: the whole variable is ignored',
    ]);
    const noKey = readOtelEnv({ OTEL_RESOURCE_ATTRIBUTES: 'a=1, =2' });
    assert.deepEqual(noKey.resourceAttributes, {});
    assert.deepEqual(noKey.warnings, [
      'OTEL_RESOURCE_ATTRIBUTES has "=2", which is not key=value: the whole variable is ignored',
    ]);
    const badEncoding = readOtelEnv({ OTEL_RESOURCE_ATTRIBUTES: 'a=1,b=100%' });
    assert.deepEqual(badEncoding.resourceAttributes, {});
    assert.deepEqual(badEncoding.warnings, [
      'OTEL_RESOURCE_ATTRIBUTES has "b=100%", whose value is not validly percent-encoded: the whole variable is ignored',
    ]);
  });
});

describe('span limits on exported spans', () => {
  const traces = useInMemoryTracing({
    OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT: '5',
    OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: '2',
    OTEL_ATTRIBUTE_COUNT_LIMIT: '3',
    OTEL_SPAN_EVENT_COUNT_LIMIT: '2',
    OTEL_SPAN_LINK_COUNT_LIMIT: '1',
    OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT: '1',
  });

  function exportedSpan(name: string): ReadableSpan {
    const span = traces.exporter.getFinishedSpans().find((finished) => finished.name === name);
    assert.ok(span, `span ${name} exported`);
    return span;
  }

  test('OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT=5 truncates a string attribute to 5 characters', () => {
    const span = traces.tracing.tracer.startSpan('long-value');
    span.setAttribute('db.query.text', 'SELECT * FROM sessions');
    span.setAttribute('gen_ai.response.finish_reasons', ['stop_sequence', 'length']);
    span.end();
    assert.deepEqual(exportedSpan('long-value').attributes, {
      'db.query.text': 'SELEC',
      'gen_ai.response.finish_reasons': ['stop_', 'lengt'],
    });
  });

  test('OTEL_ATTRIBUTE_COUNT_LIMIT=3 keeps three attributes and counts the dropped ones', () => {
    const span = traces.tracing.tracer.startSpan('many-attributes');
    for (const key of ['a', 'b', 'c', 'd', 'e']) span.setAttribute(key, 1);
    span.end();
    const exported = exportedSpan('many-attributes');
    assert.deepEqual(exported.attributes, { a: 1, b: 1, c: 1 });
    assert.equal(exported.droppedAttributesCount, 2);
  });

  test('event, event attribute and link limits', () => {
    const linked = traces.tracing.tracer.startSpan('linked');
    const links = [1, 2].map(() => ({ context: linked.spanContext() }));
    const span = traces.tracing.tracer.startSpan('events-and-links', { links });
    for (const name of ['first', 'second', 'third']) span.addEvent(name, { x: 1, y: 2 });
    span.end();
    linked.end();
    const exported = exportedSpan('events-and-links');
    // The oldest events make room for new ones; each keeps one attribute.
    assert.deepEqual(
      exported.events.map((event) => [event.name, event.attributes, event.droppedAttributesCount]),
      [
        ['second', { x: 1 }, 1],
        ['third', { x: 1 }, 1],
      ],
    );
    assert.equal(exported.droppedEventsCount, 1);
    assert.equal(exported.links.length, 1);
    assert.equal(exported.droppedLinksCount, 1);
  });
});

describe('OTEL_BSP_* on the OTLP exporter, to a receiver on 127.0.0.1', () => {
  let receiver: Server;
  let endpoint: string;
  /** The export requests the receiver got over OTLP/HTTP (JSON), as the span names of each. */
  const requests: string[][] = [];

  before(async () => {
    receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const payload = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ name: string }> }> }>;
        };
        requests.push(
          payload.resourceSpans.flatMap((resource) =>
            resource.scopeSpans.flatMap((scope) => scope.spans.map((span) => span.name)),
          ),
        );
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
  });
  after(() => new Promise((resolve) => receiver.close(resolve)));

  /** Ends spans `names` one after the other under OTLP export with `env`, then shuts down (flushing). */
  async function exportSpans(env: Record<string, string>, names: string[]): Promise<string[][]> {
    requests.length = 0;
    const tracing = startTracing({
      serviceName: 'maos',
      serviceVersion: 'test',
      otel: readOtelEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint, ...env }),
    });
    for (const name of names) tracing.tracer.startSpan(name).end();
    // Shutdown exports what is queued and waits for the requests in flight.
    await tracing.shutdown();
    return [...requests].sort((a, b) => (a[0] ?? '').localeCompare(b[0] ?? ''));
  }

  test('the defaults send the spans in one request', async () => {
    assert.deepEqual(await exportSpans({}, ['a', 'b', 'c']), [['a', 'b', 'c']]);
  });

  test('OTEL_BSP_MAX_EXPORT_BATCH_SIZE=1: one span per request', async () => {
    assert.deepEqual(await exportSpans({ OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '1' }, ['a', 'b', 'c']), [
      ['a'],
      ['b'],
      ['c'],
    ]);
  });

  test('OTEL_BSP_MAX_QUEUE_SIZE=1: spans ended while the queue is full are dropped', async () => {
    // The batch size follows the queue down to 1: `a` is sent at once, `b` waits in the queue
    // while that request runs, `c` to `e` find the queue full.
    assert.deepEqual(await exportSpans({ OTEL_BSP_MAX_QUEUE_SIZE: '1' }, ['a', 'b', 'c', 'd', 'e']), [
      ['a'],
      ['b'],
    ]);
  });
});

describe('shutdown with a collector that cannot be reached', () => {
  test('resolves, says the last spans were lost, and leaves no tracer registered', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const warnings: string[] = [];
    const tracing = startTracing({
      serviceName: 'maos',
      serviceVersion: 'test',
      otel: readOtelEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${port}/v1/traces` }),
      onWarning: (message) => warnings.push(message),
    });
    tracing.tracer.startSpan('lost').end();
    await tracing.shutdown();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /^the last spans could not be exported at shutdown: /);
    assert.equal(trace.getTracer('maos').startSpan('after').isRecording(), false);
  });
});

/** A span exporter that records each batch and answers only when told to (`answerAll`). */
class HeldSpanExporter implements SpanExporter {
  readonly batches: string[][] = [];
  private readonly pending: Array<(result: ExportResult) => void> = [];
  private readonly answerAtOnce: boolean;
  constructor(answerAtOnce: boolean) {
    this.answerAtOnce = answerAtOnce;
  }
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.batches.push(spans.map((span) => span.name));
    if (this.answerAtOnce) done({ code: ExportResultCode.SUCCESS });
    else this.pending.push(done);
  }
  answerAll(): void {
    for (const done of this.pending.splice(0)) done({ code: ExportResultCode.SUCCESS });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

describe('OTEL_BSP_SCHEDULE_DELAY and OTEL_BSP_EXPORT_TIMEOUT on the batch span processor', () => {
  /** The processor startTracing builds for an exporter under `env`, behind a provider of its own. */
  function batching(env: Record<string, string>, exporter: SpanExporter) {
    const processor = createBatchSpanProcessor(exporter, readOtelEnv(env).batchSpanProcessor);
    const tracer = new TracerProvider({ spanProcessors: [processor] }).getTracer('test');
    return { processor, endSpan: (name: string) => tracer.startSpan(name).end() };
  }

  /** Whether `promise` has settled, once pending callbacks ran (setImmediate is not mocked). */
  async function settled(promise: Promise<unknown>): Promise<boolean> {
    let done = false;
    promise.then(
      () => {
        done = true;
      },
      () => {
        done = true;
      },
    );
    await new Promise((resolve) => setImmediate(resolve));
    return done;
  }

  test('OTEL_BSP_SCHEDULE_DELAY=1000: a span is exported 1000 ms after it ended', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const exporter = new HeldSpanExporter(true);
    const { endSpan } = batching({ OTEL_BSP_SCHEDULE_DELAY: '1000' }, exporter);
    endSpan('a');
    t.mock.timers.tick(999);
    assert.deepEqual(exporter.batches, []);
    t.mock.timers.tick(1);
    assert.deepEqual(exporter.batches, [['a']]);
  });

  test('OTEL_BSP_EXPORT_TIMEOUT=2000: an export without an answer fails after 2000 ms', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const exporter = new HeldSpanExporter(false);
    const { processor, endSpan } = batching({ OTEL_BSP_EXPORT_TIMEOUT: '2000' }, exporter);
    endSpan('a');
    const flushed = processor.forceFlush();
    t.mock.timers.tick(1999);
    assert.equal(await settled(flushed), false);
    t.mock.timers.tick(1);
    assert.equal(await settled(flushed), true);
    await assert.rejects(flushed, /Timeout/);
    assert.deepEqual(exporter.batches, [['a']]);
  });

  test('OTEL_BSP_EXPORT_TIMEOUT=0: an export may take as long as it takes', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const exporter = new HeldSpanExporter(false);
    const { processor, endSpan } = batching({ OTEL_BSP_EXPORT_TIMEOUT: '0' }, exporter);
    endSpan('a');
    const flushed = processor.forceFlush();
    // A day, far past the SDK's default of 30 s.
    t.mock.timers.tick(24 * 3600 * 1000);
    assert.equal(await settled(flushed), false);
    exporter.answerAll();
    await flushed;
  });
});

describe('warnings about ignored OTEL_* values', () => {
  test('startTracing reports each one when tracing starts, and none when tracing is off', async () => {
    const told: string[] = [];
    const env = { OTEL_BSP_MAX_QUEUE_SIZE: 'lots', OTEL_TRACES_SAMPLER: 'jaeger_remote' };
    const off = startTracing({
      serviceName: 'maos',
      serviceVersion: 'test',
      otel: readOtelEnv(env),
      onWarning: (message) => told.push(message),
    });
    assert.equal(off.enabled, false);
    assert.equal(told.length, 0);
    const on = startTracing({
      serviceName: 'maos',
      serviceVersion: 'test',
      otel: readOtelEnv(env),
      spanProcessors: [new SimpleSpanProcessor({ exporter: new InMemorySpanExporter() })],
      onWarning: (message) => told.push(message),
    });
    await on.shutdown();
    assert.equal(told.length, 2);
    assert.match(told[0] ?? '', /^OTEL_TRACES_SAMPLER="jaeger_remote"/);
    assert.match(told[1] ?? '', /^OTEL_BSP_MAX_QUEUE_SIZE="lots"/);
  });

  test('the server logs them as warnings of its tracing component', async () => {
    const log = captureLog();
    // The server reads OTEL_* from its environment (createTelemetry without `otel`).
    process.env.OTEL_SPAN_EVENT_COUNT_LIMIT = '-5';
    let server: TestServer;
    try {
      server = await startTestServer({
        config: { logLevel: 'warn' },
        spanProcessors: [new SimpleSpanProcessor({ exporter: new InMemorySpanExporter() })],
        logDestination: log.destination,
      });
    } finally {
      delete process.env.OTEL_SPAN_EVENT_COUNT_LIMIT;
    }
    await server.close();
    const line = log.lines.find((entry) => entry['log.logger'] === 'maos.tracing');
    assert.ok(line, log.text());
    assert.equal(line['log.level'], 'warn');
    assert.equal(
      line.message,
      'OTEL_SPAN_EVENT_COUNT_LIMIT="-5" is not a non-negative integer up to 2147483647: ignored, as if unset',
    );
  });
});
