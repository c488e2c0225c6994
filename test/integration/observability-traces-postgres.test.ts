// Traces in cluster mode (PostgreSQL): queries of a request are `postgresql` CLIENT spans in the
// request's trace, and tasks claimed by another replica continue the session's stored trace.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';

/** The SDK's in-memory exporter, except that stopping a server (shutdown) keeps its spans. */
class KeepingSpanExporter extends InMemorySpanExporter {
  override shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

test('PostgreSQL queries of a request become db spans with db.system.name=postgresql', async (t) => {
  const database = await createTestDatabase();
  const exporter = new KeepingSpanExporter();
  const server = await startTestServer({
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
    config: { store: { url: database.url }, workers: { concurrency: 0 } },
  }).catch(async (error: unknown) => {
    await database.drop();
    throw error;
  });
  // The server stops before its database is dropped (after hooks would run in the wrong order).
  t.after(async () => {
    await server.close();
    await database.drop();
  });
  const created = await requestJson(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'pg spans', agents: [{ name: 'a', role: 'qa', task: 'x', runner: 'ok' }] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const spans = exporter.getFinishedSpans();
  const request = spans.find((span) => span.name === 'POST /v1/sessions');
  assert.ok(request);
  const insert = spans.find(
    (span) =>
      span.name === 'INSERT sessions' &&
      span.kind === SpanKind.CLIENT &&
      span.attributes['db.system.name'] === 'postgresql',
  );
  assert.ok(insert, `no postgresql INSERT sessions span among ${spans.map((span) => span.name).join(', ')}`);
  assert.equal(insert.spanContext().traceId, request.spanContext().traceId);
  assert.doesNotMatch(String(insert.attributes['db.query.text']), /pg spans/);
});

test('replicas share one trace per session: tasks claimed by another replica continue it', async (t) => {
  const database = await createTestDatabase();
  const collect = () => {
    const exporter = new KeepingSpanExporter();
    return {
      get spans() {
        return exporter.getFinishedSpans();
      },
      processor: new SimpleSpanProcessor({ exporter }),
    };
  };
  const api = collect();
  const worker = collect();
  const servers: Array<{ close(): Promise<void> }> = [];
  // Stopped newest first (the first one registered the process-wide context manager), then dropped.
  t.after(async () => {
    for (const server of servers.reverse()) await server.close();
    await database.drop();
  });
  const front = await startTestServer({
    spanProcessors: [api.processor],
    config: { store: { url: database.url }, workers: { concurrency: 0 } },
  });
  servers.push(front);
  const back = await startTestServer({
    spanProcessors: [worker.processor],
    config: { store: { url: database.url }, workers: { concurrency: 2, pollIntervalMs: 100 } },
  });
  servers.push(back);
  const created = await requestJson<{ id: string }>(`${front.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'replicas',
      strategy: 'sequential',
      agents: [
        { name: 'a', role: 'qa', task: 'x', runner: 'ok' },
        { name: 'b', role: 'engineer', task: 'y', runner: 'ok' },
      ],
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal((await waitForSession(front.url, created.body.id)).status, 'completed');
  const workflow = api.spans.find((span) => span.name === 'invoke_workflow sequential');
  assert.ok(workflow);
  const agents = worker.spans.filter((span) => span.name.startsWith('invoke_agent '));
  assert.equal(agents.length, 2, 'both tasks ran on the worker replica');
  for (const agent of agents) {
    assert.equal(agent.spanContext().traceId, workflow.spanContext().traceId);
    assert.equal(agent.parentSpanContext?.spanId, workflow.spanContext().spanId);
  }
  assert.equal(
    api.spans.filter((span) => span.name.startsWith('invoke_agent ')).length,
    0,
    'the API-only replica ran no task',
  );
});
