// A model call through the telemetry adapter yields a chat span and the GenAI metrics; a failure
// yields error_type on both, classified from the provider failure.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { pino } from 'pino';
import { useInMemoryTracing } from '../../test/fixtures/in-memory-tracing.ts';
import { type ScriptedLlmServer, startLlmServer } from '../../test/fixtures/llm-server.ts';
import { createLlmClient } from '../agents/providers/llm-client.ts';
import { findBuiltInRole } from '../agents/roles/catalogue.ts';
import { createAiSdkRuntime } from '../agents/runtimes/ai-sdk/ai-sdk-runtime.ts';
import { llmConfigSchema, providersConfigSchema } from '../config/llm-schema.ts';
import { ORCHESTRATOR_ROUTE } from '../engine/planner.ts';
import { streamSynthesis } from '../engine/planner-synthesis.ts';
import { AppError } from '../errors/app-error.ts';
import { createGenAiTracer } from './genai-spans.ts';
import { createLlmTelemetry, toProviderErrorType } from './llm-telemetry.ts';
import { createMetrics } from './metrics.ts';

const traces = useInMemoryTracing();
const { exporter } = traces;

describe('LLM telemetry', () => {
  test('a successful call records span attributes, duration, tokens and cost', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    let clock = 1000;
    const telemetry = createLlmTelemetry({
      metrics,
      genAi: createGenAiTracer({ tracer: traces.tracing.tracer, captureMessageContent: false }),
      now: () => clock,
    });
    const value = await telemetry.observeCall(
      { provider: 'anthropic', model: 'claude-x' },
      async () => {
        clock += 2500;
        return { text: 'ok', usage: { input: 100, output: 20 } };
      },
      (result) => ({ inputTokens: result.usage.input, outputTokens: result.usage.output, costUsd: 0.5 }),
    );
    assert.equal(value.text, 'ok');
    const text = await metrics.render();
    const labels =
      'gen_ai_operation_name="chat",gen_ai_provider_name="anthropic",gen_ai_request_model="claude-x"';
    assert.match(text, new RegExp(`gen_ai_client_operation_duration_seconds_sum\\{${labels}\\} 2.5`));
    assert.match(
      text,
      new RegExp(`gen_ai_client_token_usage_sum\\{${labels},gen_ai_token_type="input"\\} 100`),
    );
    assert.match(text, /maos_llm_cost_usd_total\{provider="anthropic",model="claude-x"\} 0.5/);
    const [span] = exporter.getFinishedSpans();
    exporter.reset();
    assert.equal(span?.name, 'chat claude-x');
    assert.equal(span?.kind, SpanKind.CLIENT);
    assert.equal(span?.attributes['gen_ai.usage.output_tokens'], 20);
  });

  test('a failed call records error_type on the duration metric, the error counter and the span', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    const telemetry = createLlmTelemetry({
      metrics,
      genAi: createGenAiTracer({ tracer: traces.tracing.tracer, captureMessageContent: false }),
    });
    await assert.rejects(
      telemetry.observeCall(
        { provider: 'openai', model: 'gpt-x' },
        async () => {
          throw new AppError('RATE_LIMITED', 'slow down');
        },
        () => ({}),
      ),
      /slow down/,
    );
    const text = await metrics.render();
    assert.match(text, /gen_ai_client_operation_duration_seconds_count\{[^}]*error_type="rate_limited"\} 1/);
    assert.match(text, /maos_llm_provider_errors_total\{provider="openai",error_type="rate_limited"\} 1/);
    const [span] = exporter.getFinishedSpans();
    exporter.reset();
    assert.equal(span?.status.code, SpanStatusCode.ERROR);
    assert.equal(span?.attributes['error.type'], 'rate_limited');
  });

  test('a call its caller stopped is cancelled, whatever it was stopped with', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    const telemetry = createLlmTelemetry({
      metrics,
      genAi: createGenAiTracer({ tracer: traces.tracing.tracer, captureMessageContent: false }),
    });
    const caller = new AbortController();
    caller.abort(new AppError('TIMEOUT', 'task stopped: cancel'));
    await assert.rejects(
      telemetry.observeCall(
        { provider: 'openai', model: 'gpt-x', signal: caller.signal },
        async () => {
          throw caller.signal.reason;
        },
        () => ({}),
      ),
      /task stopped/,
    );
    const text = await metrics.render();
    assert.match(text, /gen_ai_client_operation_duration_seconds_count\{[^}]*error_type="cancelled"\} 1/);
    assert.match(text, /maos_llm_provider_errors_total\{provider="openai",error_type="cancelled"\} 1/);
    assert.doesNotMatch(text, /error_type="timeout"/);
    const [span] = exporter.getFinishedSpans();
    exporter.reset();
    assert.equal(span?.attributes['error.type'], 'cancelled');
  });

  test('failure kinds map to the bounded provider error types', () => {
    assert.equal(toProviderErrorType('auth'), 'authentication');
    assert.equal(toProviderErrorType('server'), 'server_error');
    assert.equal(toProviderErrorType('something new'), '_OTHER');
  });

  test('circuit state and cache lookups reach their metrics', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    const telemetry = createLlmTelemetry({
      metrics,
      genAi: createGenAiTracer({ tracer: traces.tracing.tracer, captureMessageContent: false }),
    });
    telemetry.circuitStateChanged('openai', 'open');
    telemetry.cacheLookup('openai', true);
    const text = await metrics.render();
    assert.match(text, /maos_llm_circuit_state\{provider="openai",state="open"\} 1/);
    assert.match(text, /maos_llm_circuit_state\{provider="openai",state="closed"\} 0/);
    assert.match(text, /maos_llm_cache_requests_total\{provider="openai",result="hit"\} 1/);
  });

  test('a call answered from the response cache is a cache hit on its span, not a provider call', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    const telemetry = createLlmTelemetry({
      metrics,
      genAi: createGenAiTracer({ tracer: traces.tracing.tracer, captureMessageContent: false }),
    });
    // What the cache model does inside the attempt: a lookup, after an await, then the answer.
    const answer = (hit: boolean) => async () => {
      await Promise.resolve();
      telemetry.cacheLookup('openai', hit);
      return { usage: { inputTokens: hit ? 0 : 10, outputTokens: hit ? 0 : 2 } };
    };
    const usage = (value: { usage: { inputTokens: number; outputTokens: number } }) => value.usage;
    await telemetry.observeCall({ provider: 'openai', model: 'gpt-x' }, answer(false), usage);
    await telemetry.observeCall({ provider: 'openai', model: 'gpt-x' }, answer(true), usage);
    await assert.rejects(
      telemetry.observeCall(
        { provider: 'openai', model: 'gpt-x' },
        async () => {
          await Promise.resolve();
          telemetry.cacheLookup('openai', true);
          throw new AppError('TIMEOUT', 'stopped while replaying');
        },
        () => ({}),
      ),
      /stopped/,
    );
    const text = await metrics.render();
    assert.match(text, /maos_llm_cache_requests_total\{provider="openai",result="hit"\} 2/);
    assert.match(text, /maos_llm_cache_requests_total\{provider="openai",result="miss"\} 1/);
    assert.match(text, /^gen_ai_client_operation_duration_seconds_count\{[^}]*\} 1$/m, 'only the miss');
    assert.doesNotMatch(text, /error_type="/);
    assert.doesNotMatch(text, /^maos_llm_provider_errors_total\{/m);
    assert.match(text, /gen_ai_client_token_usage_count\{[^}]*gen_ai_token_type="input"\} 1/);
    const spans = exporter.getFinishedSpans();
    exporter.reset();
    assert.deepEqual(
      spans.map((span) => span.attributes['maos.llm.response_cache.hit']),
      [false, true, true],
    );
  });

  test('an agent attempt: only the model calls answered by the provider are samples', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    const telemetry = createLlmTelemetry({
      metrics,
      genAi: createGenAiTracer({ tracer: traces.tracing.tracer, captureMessageContent: false }),
    });
    const agent = traces.tracing.tracer.startSpan('invoke_agent engineer');
    const scope = context.with(trace.setSpan(context.active(), agent), () => telemetry.agentScope());
    const tokens = { inputTokens: 5, outputTokens: 1, cacheReadTokens: 0 };
    await telemetry.observeCall(
      { provider: 'openai', model: 'gpt-x' },
      async () => {
        const calls = scope.claimAttempt(1, () => 0);
        assert.ok(calls);
        // Step 1 from the cache, step 2 from the provider (its prompt holds a new tool result).
        for (const hit of [true, false]) {
          calls.callStarted(hit ? 1 : 2);
          await Promise.resolve();
          telemetry.cacheLookup('openai', hit);
          calls.callFinished(
            hit ? { ...tokens, inputTokens: 0, outputTokens: 0 } : tokens,
            'stop',
            'gpt-x',
            'r',
          );
        }
        return {};
      },
      () => ({}),
    );
    agent.end();
    const text = await metrics.render();
    assert.match(text, /^gen_ai_client_operation_duration_seconds_count\{[^}]*\} 1$/m);
    assert.match(text, /gen_ai_client_token_usage_sum\{[^}]*gen_ai_token_type="input"\} 5$/m);
    const chats = exporter.getFinishedSpans().filter((span) => span.name === 'chat gpt-x');
    exporter.reset();
    assert.deepEqual(
      chats.map((span) => [span.attributes['maos.llm.step'], span.attributes['maos.llm.response_cache.hit']]),
      [
        [1, true],
        [2, false],
      ],
    );
  });

  test('agentScope: no tool tracing outside a span; inside, tool spans are its children and failures are marked', async () => {
    const telemetry = createLlmTelemetry({
      metrics: createMetrics({ version: '1.2.3', collectDefaults: false }),
      genAi: createGenAiTracer({ tracer: traces.tracing.tracer, captureMessageContent: false }),
    });
    const untraced = telemetry.agentScope();
    assert.equal(untraced.traceTool, undefined);
    assert.equal(telemetry.agentScope(), untraced, 'outside a span: one shared object, nothing per run');
    const agent = traces.tracing.tracer.startSpan('invoke_agent engineer');
    const scope = context.with(trace.setSpan(context.active(), agent), () => telemetry.agentScope());
    assert.ok(scope.traceTool);
    scope.setModel('openai', 'gpt-x');
    await assert.rejects(
      scope.traceTool({ name: 'grep', callId: 'c1', input: { q: 'secret' } }, () =>
        Promise.reject(new Error('no')),
      ),
      /no/,
    );
    agent.end();
    const spans = exporter.getFinishedSpans();
    exporter.reset();
    const tool = spans.find((span) => span.name === 'execute_tool grep');
    assert.equal(tool?.parentSpanContext?.spanId, agent.spanContext().spanId);
    assert.equal(tool?.status.code, SpanStatusCode.ERROR);
    assert.equal(tool?.attributes['gen_ai.tool.call.arguments'], undefined);
    const ended = spans.find((span) => span.name === 'invoke_agent engineer');
    assert.equal(ended?.attributes['gen_ai.provider.name'], 'openai');
    assert.equal(ended?.attributes['gen_ai.request.model'], 'gpt-x');
  });
});

// A refusal or content filter with no text (PROVIDER_REFUSED) is the provider's content filter, not
// a server error nor an unknown failure: in a real run, synthesis (one model call) and an agent.
describe('LLM telemetry of an answer the provider refused', () => {
  let server: ScriptedLlmServer;
  before(async () => {
    server = await startLlmServer();
  });
  after(() => server.close());

  function stack() {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    const telemetry = createLlmTelemetry({
      metrics,
      genAi: createGenAiTracer({ tracer: traces.tracing.tracer, captureMessageContent: false }),
    });
    const client = createLlmClient({
      providers: providersConfigSchema.parse({
        main: { type: 'openai', model: 'm', apiKey: 'k', baseURL: server.openaiBaseURL },
      }),
      llm: llmConfigSchema.parse({ defaultProvider: 'main' }),
      logger: pino({ level: 'silent' }),
      telemetry,
    });
    return { metrics, telemetry, client };
  }

  test('the synthesis refused with no text counts as content_filter', async () => {
    const { metrics, client } = stack();
    server.enqueue({ text: '', refused: true });
    await assert.rejects(
      streamSynthesis(client, ORCHESTRATOR_ROUTE, 2000, {
        tenantId: 'default',
        objective: 'Ship it',
        outputs: [{ name: 'impl', role: 'engineer', status: 'succeeded', output: 'done' }],
      }),
      { code: 'PROVIDER_REFUSED' },
    );
    exporter.reset();
    const text = await metrics.render();
    assert.match(
      text,
      /gen_ai_client_operation_duration_seconds_count\{[^}]*gen_ai_provider_name="main"[^}]*error_type="content_filter"\} 1/,
    );
    assert.match(text, /maos_llm_provider_errors_total\{provider="main",error_type="content_filter"\} 1/);
    assert.doesNotMatch(text, /error_type="(_OTHER|server_error)"/);
  });

  test('an agent answer refused with no text counts as content_filter', async () => {
    const { metrics, telemetry, client } = stack();
    server.enqueue({ text: '', refused: true });
    const runtime = createAiSdkRuntime({
      client,
      resolveRole: (_tenant, name) => findBuiltInRole(name),
      dependencyOutputChars: 2000,
      agentTelemetry: () => telemetry.agentScope(),
    });
    const logger = pino({ level: 'silent' });
    // Under an agent span, so that the model call has its chat span.
    const agent = traces.tracing.tracer.startSpan('invoke_agent design');
    await assert.rejects(
      context.with(trace.setSpan(context.active(), agent), () =>
        runtime.run(
          {
            sessionId: 's1',
            tenantId: 't1',
            objective: 'Build a blog API',
            taskId: 'task-1',
            name: 'design',
            role: 'architect',
            instructions: 'Design the API',
            runner: null,
            agentId: 'a1',
            attempt: 1,
            dependencies: [],
            kind: 'agent',
          },
          { signal: new AbortController().signal, logger, emitOutput: () => undefined },
        ),
      ),
      { code: 'PROVIDER_REFUSED' },
    );
    agent.end();
    // The model call that answered the refusal is the failed call, as the synthesis's is: its span
    // keeps the finish reason, and its duration sample carries the error type.
    const chat = exporter.getFinishedSpans().find((span) => span.name === 'chat m');
    assert.equal(chat?.status.code, SpanStatusCode.ERROR);
    assert.equal(chat?.attributes['error.type'], 'content_filter');
    assert.deepEqual(chat?.attributes['gen_ai.response.finish_reasons'], ['content_filter']);
    exporter.reset();
    const text = await metrics.render();
    assert.match(
      text,
      /gen_ai_client_operation_duration_seconds_count\{[^}]*gen_ai_provider_name="main"[^}]*error_type="content_filter"\} 1/,
    );
    assert.doesNotMatch(text, /gen_ai_client_operation_duration_seconds_count\{(?![^}]*error_type)[^}]*\}/);
    assert.match(text, /maos_llm_provider_errors_total\{provider="main",error_type="content_filter"\} 1/);
    assert.doesNotMatch(text, /error_type="(_OTHER|server_error)"/);
  });
});
