// What the LLM client reports to the metrics when a provider fails: an HTTP 500 from the provider
// counts as `server_error`, and a call refused by the open circuit breaker as `circuit_open`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { trace } from '@opentelemetry/api';
import { generateText } from 'ai';
import { pino } from 'pino';
import { type ScriptedLlmServer, startLlmServer } from '../../../test/fixtures/llm-server.ts';
import { llmConfigSchema, providersConfigSchema } from '../../config/llm-schema.ts';
import { createGenAiTracer } from '../../observability/genai-spans.ts';
import { createLlmTelemetry } from '../../observability/llm-telemetry.ts';
import { createMetrics } from '../../observability/metrics.ts';
import { createLlmClient } from './llm-client.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

describe('LLM client telemetry of provider failures', () => {
  let server: ScriptedLlmServer;
  before(async () => {
    server = await startLlmServer({ apiKey: 'key-main' });
  });
  after(() => server.close());

  test('a 500 counts as server_error; a call the open circuit refuses counts as circuit_open', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    const client = createLlmClient({
      providers: providersConfigSchema.parse({
        main: {
          type: 'openai-compatible',
          model: 'main-model',
          apiKey: 'key-main',
          baseURL: server.openaiBaseURL,
        },
      }),
      // One attempt, and one failure opens the circuit: the second call is refused before it starts.
      llm: llmConfigSchema.parse({ retry: { maxAttempts: 1 }, circuitBreaker: { failureThreshold: 1 } }),
      logger: pino({ level: 'silent' }),
      telemetry: createLlmTelemetry({
        metrics,
        genAi: createGenAiTracer({ tracer: trace.getTracer('test'), captureMessageContent: false }),
      }),
    });
    const ask = () =>
      client.call('engineer', AbortSignal.timeout(10_000), ({ model, signal }) =>
        generateText({ model, prompt: 'hi', maxRetries: 0, abortSignal: signal }),
      );

    server.enqueue({ error: 500 });
    await assert.rejects(ask(), { code: 'PROVIDER_UNAVAILABLE' });
    await assert.rejects(ask(), /circuit breaker open/);

    const text = await metrics.render();
    assert.match(text, /maos_llm_circuit_state\{provider="main",state="open"\} 1/);
    assert.match(
      text,
      /gen_ai_client_operation_duration_seconds_count\{[^}]*gen_ai_provider_name="main"[^}]*error_type="server_error"\} 1/,
    );
    assert.match(text, /maos_llm_provider_errors_total\{provider="main",error_type="server_error"\} 1/);
    assert.match(text, /maos_llm_provider_errors_total\{provider="main",error_type="circuit_open"\} 1/);
    assert.doesNotMatch(text, /error_type="_OTHER"/);
    // The refused call made no model call, so it has no duration sample.
    assert.doesNotMatch(
      text,
      /gen_ai_client_operation_duration_seconds_count\{[^}]*error_type="circuit_open"/,
    );
    assert.equal(server.requests.length, 1);
  });

  test('every configured provider has a circuit-state series from the start: closed', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    createLlmClient({
      providers: providersConfigSchema.parse({
        main: { type: 'openai-compatible', model: 'm', apiKey: 'k', baseURL: server.openaiBaseURL },
        spare: { type: 'openai-compatible', model: 'm', apiKey: 'k', baseURL: server.openaiBaseURL },
      }),
      llm: llmConfigSchema.parse({}),
      logger: pino({ level: 'silent' }),
      telemetry: createLlmTelemetry({
        metrics,
        genAi: createGenAiTracer({ tracer: trace.getTracer('test'), captureMessageContent: false }),
      }),
    });
    const text = await metrics.render();
    for (const provider of ['main', 'spare']) {
      assert.match(text, new RegExp(`maos_llm_circuit_state\\{provider="${provider}",state="closed"\\} 1`));
      assert.match(text, new RegExp(`maos_llm_circuit_state\\{provider="${provider}",state="open"\\} 0`));
    }
  });
});
