// The composition helper: off without OTEL_* configuration; with an exporter, HTTP requests and
// LLM calls produce nested spans, and message content follows the opt-in setting.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import Fastify from 'fastify';
import { readOtelEnv } from '../config/otel-env.ts';
import { createMetrics } from './metrics.ts';
import { createTelemetry } from './telemetry.ts';

const config = {
  tracing: { captureMessageContent: false },
  logging: { format: 'json' as const, environment: 'test' },
};

test('tracing stays off when OTEL_* configures nothing', async () => {
  const telemetry = createTelemetry({
    config,
    metrics: createMetrics({ version: '1.2.3', collectDefaults: false }),
    serviceVersion: '1.2.3',
    otel: readOtelEnv({}),
  });
  assert.equal(telemetry.tracing.enabled, false);
  await telemetry.shutdown();
});

test('an LLM call inside an HTTP request nests its chat span under the server span', async () => {
  const exporter = new InMemorySpanExporter();
  const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
  const telemetry = createTelemetry({
    config,
    metrics,
    serviceVersion: '1.2.3',
    otel: readOtelEnv({}),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const app = Fastify();
  Object.defineProperty(telemetry.httpPlugin, Symbol.for('skip-override'), { value: true });
  await app.register(telemetry.httpPlugin);
  app.post('/v1/ask', async () =>
    telemetry.llm.observeCall(
      { provider: 'anthropic', model: 'claude-x' },
      async () => ({ text: 'hi' }),
      () => ({ inputTokens: 3, outputTokens: 1 }),
    ),
  );
  try {
    const response = await app.inject({ method: 'POST', url: '/v1/ask' });
    assert.equal(response.statusCode, 200);
    const spans = exporter.getFinishedSpans();
    const server = spans.find((span) => span.name === 'POST /v1/ask');
    const chat = spans.find((span) => span.name === 'chat claude-x');
    assert.ok(server && chat);
    assert.equal(chat.parentSpanContext?.spanId, server.spanContext().spanId);
    assert.equal(chat.resource.attributes['service.version'], '1.2.3');
    assert.match(
      await metrics.render(),
      /gen_ai_client_token_usage_count\{[^}]*gen_ai_token_type="input"\} 1/,
    );
  } finally {
    await app.close();
    await telemetry.shutdown();
  }
});
