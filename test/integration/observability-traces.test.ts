// Traces of a running server, exported in memory: database spans under the request that ran the
// query, and one trace per session whose task spans continue it across a restart.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { requestJson, startTestServer } from '../fixtures/server.ts';

interface Session {
  id: string;
  status: string;
}

function traced() {
  const exporter = new InMemorySpanExporter();
  return { exporter, spanProcessors: [new SimpleSpanProcessor(exporter)] };
}

function named(spans: ReadableSpan[], name: string): ReadableSpan {
  const span = spans.find((candidate) => candidate.name === name);
  assert.ok(span, `no span named ${name} among ${[...new Set(spans.map((s) => s.name))].join(', ')}`);
  return span;
}

describe('database spans', () => {
  test('queries a request runs become CLIENT spans with db.* attributes inside its trace', async () => {
    const { exporter, spanProcessors } = traced();
    const server = await startTestServer({ spanProcessors, config: { workers: { concurrency: 0 } } });
    try {
      const created = await requestJson<Session>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: { objective: 'db spans', agents: [{ name: 'a', role: 'qa', task: 'x', runner: 'ok' }] },
      });
      assert.equal(created.status, 201);
      const spans = exporter.getFinishedSpans();
      const request = named(spans, 'POST /v1/sessions');
      const queries = spans.filter(
        (span) => span.attributes['db.system.name'] === 'sqlite' && span.kind === SpanKind.CLIENT,
      );
      const insert = queries.find((span) => span.name === 'INSERT sessions');
      assert.ok(insert, `no INSERT sessions span among ${queries.map((span) => span.name).join(', ')}`);
      assert.equal(insert.spanContext().traceId, request.spanContext().traceId);
      assert.equal(insert.attributes['db.operation.name'], 'INSERT');
      assert.equal(insert.attributes['db.collection.name'], 'sessions');
      assert.match(String(insert.attributes['db.query.text']), /insert into "sessions"/i);
      // Parameterised text only: the objective is a bound value, never part of the span.
      assert.doesNotMatch(String(insert.attributes['db.query.text']), /db spans/);
    } finally {
      await server.close();
    }
  });
});
