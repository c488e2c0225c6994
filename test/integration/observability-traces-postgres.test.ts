// Database spans on PostgreSQL: with tracing on, the pooled store passes the query span logger to
// Kysely too, so queries of a request show up as `postgresql` CLIENT spans in the request's trace.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { requestJson, startTestServer } from '../fixtures/server.ts';

test('PostgreSQL queries of a request become db spans with db.system.name=postgresql', async (t) => {
  const database = await createTestDatabase();
  const spans: ReadableSpan[] = [];
  const collector: SpanProcessor = {
    onStart: () => {},
    onEnd: (span) => {
      spans.push(span);
    },
    forceFlush: async () => {},
    shutdown: async () => {},
  };
  const server = await startTestServer({
    spanProcessors: [collector],
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
