// Traces: GenAI span names, kinds, nesting and attributes; content only when opted in; one trace
// across a process restart via the stored W3C context; HTTP server spans; database spans.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import Database from 'better-sqlite3';
import Fastify, { type FastifyPluginAsync } from 'fastify';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { useInMemoryTracing } from '../../test/fixtures/in-memory-tracing.ts';
import { isTracingConfigured, readOtelEnv } from '../config/otel-env.ts';
import { createQuerySpanLogger } from './db-tracing.ts';
import { createGenAiTracer } from './genai-spans.ts';
import { createHttpTracingPlugin } from './http-tracing-plugin.ts';
import { restoreTraceContext, serializeTraceContext, startTracing, withSpan } from './tracing.ts';

const traces = useInMemoryTracing();
const { exporter } = traces;

function finished(): ReadableSpan[] {
  const spans = exporter.getFinishedSpans();
  exporter.reset();
  return spans;
}
function byName(spans: ReadableSpan[], name: string): ReadableSpan {
  const span = spans.find((candidate) => candidate.name === name);
  assert.ok(span, `span ${name} exists among ${spans.map((s) => s.name).join(', ')}`);
  return span;
}

describe('tracing configuration', () => {
  test('is off unless an exporter or endpoint is configured through OTEL_*', () => {
    assert.equal(isTracingConfigured(readOtelEnv({})), false);
    assert.equal(isTracingConfigured(readOtelEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })), true);
    assert.equal(
      readOtelEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' }).tracesEndpoint,
      'http://c:4318/v1/traces',
    );
    assert.equal(isTracingConfigured(readOtelEnv({ OTEL_TRACES_EXPORTER: 'otlp' })), true);
    assert.equal(
      isTracingConfigured(
        readOtelEnv({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' }),
      ),
      false,
    );
    assert.equal(
      isTracingConfigured(
        readOtelEnv({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' }),
      ),
      false,
    );
    assert.deepEqual(readOtelEnv({ OTEL_RESOURCE_ATTRIBUTES: 'a=1,b=x%20y' }).resourceAttributes, {
      a: '1',
      b: 'x y',
    });
  });

  test('startTracing without configuration returns a disabled tracer', async () => {
    const disabled = startTracing({ serviceName: 'maos', serviceVersion: '1', otel: readOtelEnv({}) });
    assert.equal(disabled.enabled, false);
    await disabled.shutdown();
  });
});

describe('GenAI spans', () => {
  test('nest workflow → agent → chat and tool with the required attributes and no content', async () => {
    const genAi = createGenAiTracer({ tracer: traces.tracing.tracer, captureMessageContent: false });
    const workflow = genAi.startWorkflow({ workflowName: 'sequential', conversationId: 'sess-1' });
    await withSpan(workflow, async () => {
      const agent = genAi.startAgent({ agentName: 'engineer', provider: 'anthropic', model: 'claude-x' });
      await withSpan(agent, async () => {
        const chat = genAi.startChat({
          provider: 'anthropic',
          model: 'claude-x',
          serverAddress: 'api.anthropic.com',
          serverPort: 443,
          inputMessages: [{ role: 'user', content: 'SECRET PROMPT' }],
          systemInstructions: 'SECRET SYSTEM',
        });
        genAi.endChat(chat, {
          responseModel: 'claude-x-2025',
          finishReasons: ['tool_calls'],
          inputTokens: 120,
          outputTokens: 30,
          outputMessages: [{ role: 'assistant', content: 'SECRET ANSWER' }],
        });
        chat.end();
        const tool = genAi.startTool({
          toolName: 'read_file',
          toolCallId: 'call_1',
          arguments: { path: 'SECRET' },
        });
        genAi.endTool(tool, { output: 'SECRET FILE' });
        tool.end();
      });
    });
    const spans = finished();
    const w = byName(spans, 'invoke_workflow sequential');
    const a = byName(spans, 'invoke_agent engineer');
    const c = byName(spans, 'chat claude-x');
    const t = byName(spans, 'execute_tool read_file');
    assert.equal(w.kind, SpanKind.INTERNAL);
    assert.equal(a.kind, SpanKind.INTERNAL);
    assert.equal(c.kind, SpanKind.CLIENT);
    assert.equal(t.kind, SpanKind.INTERNAL);
    assert.equal(a.parentSpanContext?.spanId, w.spanContext().spanId);
    assert.equal(c.parentSpanContext?.spanId, a.spanContext().spanId);
    assert.equal(t.parentSpanContext?.spanId, a.spanContext().spanId);
    assert.equal(new Set(spans.map((span) => span.spanContext().traceId)).size, 1);
    for (const span of [w, a, c, t]) {
      assert.ok(span.attributes['gen_ai.operation.name'], `${span.name} has gen_ai.operation.name`);
      assert.ok(span.attributes['gen_ai.provider.name'], `${span.name} has gen_ai.provider.name`);
    }
    assert.equal(c.attributes['gen_ai.request.model'], 'claude-x');
    assert.equal(c.attributes['gen_ai.usage.input_tokens'], 120);
    assert.equal(c.attributes['gen_ai.usage.output_tokens'], 30);
    assert.deepEqual(c.attributes['gen_ai.response.finish_reasons'], ['tool_calls']);
    assert.equal(c.attributes['server.address'], 'api.anthropic.com');
    assert.equal(t.attributes['gen_ai.tool.call.id'], 'call_1');
    assert.equal(w.attributes['gen_ai.conversation.id'], 'sess-1');
    assert.doesNotMatch(JSON.stringify(spans.map((span) => span.attributes)), /SECRET/);
  });

  test('records message content only when opted in', () => {
    const genAi = createGenAiTracer({ tracer: traces.tracing.tracer, captureMessageContent: true });
    const chat = genAi.startChat({
      provider: 'openai',
      model: 'gpt-x',
      inputMessages: [{ role: 'user', content: 'hi' }],
    });
    genAi.endChat(chat, { outputMessages: [{ role: 'assistant', content: 'hello' }] });
    chat.end();
    const tool = genAi.startTool({ toolName: 'grep', arguments: { q: 'x' } });
    genAi.endTool(tool, { output: 'found', isError: true });
    tool.end();
    const spans = finished();
    const c = byName(spans, 'chat gpt-x');
    assert.match(String(c.attributes['gen_ai.input.messages']), /"hi"/);
    assert.match(String(c.attributes['gen_ai.output.messages']), /"hello"/);
    const t = byName(spans, 'execute_tool grep');
    assert.equal(t.attributes['gen_ai.tool.call.result'], 'found');
    assert.equal(t.status.code, SpanStatusCode.ERROR);
  });

  test('withSpan marks a failure with error.type and ERROR status', async () => {
    const span = traces.tracing.tracer.startSpan('failing');
    const error = Object.assign(new Error('provider down'), { code: 'PROVIDER_UNAVAILABLE' });
    await assert.rejects(
      withSpan(span, () => Promise.reject(error)),
      /provider down/,
    );
    const [recorded] = finished();
    assert.equal(recorded?.status.code, SpanStatusCode.ERROR);
    assert.equal(recorded?.attributes['error.type'], 'PROVIDER_UNAVAILABLE');
  });

  test('a session keeps one trace id across a process restart through its stored context', () => {
    const genAi = createGenAiTracer({ tracer: traces.tracing.tracer, captureMessageContent: false });
    const workflow = genAi.startWorkflow({ workflowName: 'parallel', conversationId: 'sess-2' });
    const stored = serializeTraceContext(trace.setSpan(context.active(), workflow));
    workflow.end();
    assert.ok(stored);
    assert.match(stored.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const child = fileURLToPath(new URL('../../test/fixtures/trace-restart-child.ts', import.meta.url));
    const output = execFileSync(process.execPath, [child, JSON.stringify(stored)], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    const resumed = JSON.parse(output) as { traceId: string; parentSpanId: string };
    assert.equal(resumed.traceId, workflow.spanContext().traceId);
    assert.equal(resumed.parentSpanId, workflow.spanContext().spanId);
    finished();
  });

  test('restoring nothing or garbage gives a fresh root', () => {
    assert.equal(trace.getSpanContext(restoreTraceContext(undefined)), undefined);
    assert.equal(trace.getSpanContext(restoreTraceContext({ traceparent: 'garbage' })), undefined);
    assert.equal(serializeTraceContext(context.active()), undefined);
  });
});

describe('HTTP and database spans', () => {
  test('server spans are named by route template, continue the caller trace and wrap the handler', async () => {
    const app = Fastify();
    const plugin: FastifyPluginAsync = createHttpTracingPlugin({ tracer: traces.tracing.tracer });
    Object.defineProperty(plugin, Symbol.for('skip-override'), { value: true });
    await app.register(plugin);
    let activeInHandler: string | undefined;
    app.get('/items/:id', async () => {
      await new Promise((resolve) => setImmediate(resolve));
      activeInHandler = trace.getActiveSpan()?.spanContext().spanId;
      return { ok: true };
    });
    app.get('/boom', async () => {
      throw new Error('kaboom');
    });
    try {
      const parentTrace = '0af7651916cd43dd8448eb211c80319c';
      await app.inject({
        url: '/items/7?x=1',
        headers: { traceparent: `00-${parentTrace}-b7ad6b7169203331-01` },
      });
      await app.inject({ url: '/nowhere' });
      await app.inject({ url: '/boom' });
      const spans = finished();
      const item = byName(spans, 'GET /items/:id');
      assert.equal(item.kind, SpanKind.SERVER);
      assert.equal(item.spanContext().traceId, parentTrace);
      assert.equal(item.parentSpanContext?.spanId, 'b7ad6b7169203331');
      assert.equal(item.attributes['http.route'], '/items/:id');
      assert.equal(item.attributes['url.path'], '/items/7');
      assert.equal(item.attributes['http.response.status_code'], 200);
      assert.equal(activeInHandler, item.spanContext().spanId);
      assert.equal(byName(spans, 'GET').attributes['http.response.status_code'], 404);
      const boom = byName(spans, 'GET /boom');
      assert.equal(boom.status.code, SpanStatusCode.ERROR);
      assert.equal(boom.attributes['error.type'], '500');
    } finally {
      await app.close();
    }
  });

  test('with tracing off the plugin adds no hooks and no spans', async () => {
    const app = Fastify();
    const plugin: FastifyPluginAsync = createHttpTracingPlugin({
      tracer: traces.tracing.tracer,
      enabled: false,
    });
    Object.defineProperty(plugin, Symbol.for('skip-override'), { value: true });
    await app.register(plugin);
    app.get('/items/:id', async () => ({ active: trace.getActiveSpan() !== undefined }));
    try {
      finished();
      const response = await app.inject({ url: '/items/7' });
      assert.deepEqual(response.json(), { active: false });
      assert.equal(finished().length, 0);
    } finally {
      await app.close();
    }
  });

  test('Kysely queries inside a span become database child spans', async () => {
    const db = new Kysely<Record<string, never>>({
      dialect: new SqliteDialect({ database: new Database(':memory:') }),
      log: createQuerySpanLogger({ tracer: traces.tracing.tracer, system: 'sqlite' }),
    });
    try {
      await sql`create table notes (id integer primary key, body text)`.execute(db);
      finished();
      const parent = traces.tracing.tracer.startSpan('task');
      await withSpan(parent, async () => {
        await sql`insert into notes (body) values (${'secret value'})`.execute(db);
        await sql`select * from notes`.execute(db);
      });
      const spans = finished();
      const insert = byName(spans, 'INSERT notes');
      assert.equal(insert.kind, SpanKind.CLIENT);
      assert.equal(insert.parentSpanContext?.spanId, parent.spanContext().spanId);
      assert.equal(insert.attributes['db.system.name'], 'sqlite');
      assert.doesNotMatch(String(insert.attributes['db.query.text']), /secret value/);
      byName(spans, 'SELECT notes');
    } finally {
      await db.destroy();
    }
  });

  test('queries run after their span ended are not traced (work a request woke, e.g. a claim)', async () => {
    // The engine's worker loop, woken by a request, keeps running in that request's context after
    // the request ended: its queries (other sessions' tasks among them) must not join its trace.
    const db = new Kysely<Record<string, never>>({
      dialect: new SqliteDialect({ database: new Database(':memory:') }),
      log: createQuerySpanLogger({ tracer: traces.tracing.tracer, system: 'sqlite' }),
    });
    try {
      await sql`create table notes (id integer primary key, body text)`.execute(db);
      const request = traces.tracing.tracer.startSpan('POST /v1/sessions');
      const woken = trace.setSpan(context.active(), request);
      await context.with(woken, () => sql`select * from notes where id = 1`.execute(db));
      request.end();
      await context.with(woken, () => sql`update notes set body = 'x'`.execute(db));
      const spans = finished();
      assert.equal(byName(spans, 'SELECT notes').parentSpanContext?.spanId, request.spanContext().spanId);
      assert.deepEqual(
        spans.filter((span) => span.name === 'UPDATE notes').map((span) => span.name),
        [],
        'no span under a request that has ended',
      );
    } finally {
      await db.destroy();
    }
  });
});
