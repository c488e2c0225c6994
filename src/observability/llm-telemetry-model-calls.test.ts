// An attempt an agent claims is recorded per model call: one chat span under the agent span and
// one duration and token sample pair per call, failures on the call that failed, and nothing for
// the attempt as a whole; claims work only while the attempt is being started.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { useInMemoryTracing } from '../../test/fixtures/in-memory-tracing.ts';
import { AppError } from '../errors/app-error.ts';
import { createGenAiTracer } from './genai-spans.ts';
import { createLlmTelemetry, type LlmTelemetry } from './llm-telemetry.ts';
import { createMetrics, type Metrics } from './metrics.ts';

const traces = useInMemoryTracing();
const { exporter } = traces;
const TARGET = { provider: 'openai', model: 'gpt-x', serverAddress: 'api.example', maxTokens: 100 };
const LABELS = 'gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-x"';

function setup(): { telemetry: LlmTelemetry; metrics: Metrics; tick(ms: number): void } {
  const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
  let clock = 1000;
  const telemetry = createLlmTelemetry({
    metrics,
    genAi: createGenAiTracer({ tracer: traces.tracing.tracer, captureMessageContent: false }),
    now: () => clock,
  });
  return { telemetry, metrics, tick: (ms) => (clock += ms) };
}

/** The agent scope inside a started `invoke_agent` span. */
function agentScope(telemetry: LlmTelemetry): { agent: Span; scope: ReturnType<LlmTelemetry['agentScope']> } {
  const agent = traces.tracing.tracer.startSpan('invoke_agent engineer');
  const scope = context.with(trace.setSpan(context.active(), agent), () => telemetry.agentScope());
  return { agent, scope };
}

const notPerAttempt = (): never => {
  throw new Error('a claimed attempt records no usage of its own');
};
const tokens = (input: number, output: number) => ({
  inputTokens: input,
  outputTokens: output,
  cacheReadTokens: 0,
});

describe('LLM telemetry of claimed attempts', () => {
  test('each model call is a chat span under the agent span with its own usage, and one sample', async () => {
    const { telemetry, metrics, tick } = setup();
    const { agent, scope } = agentScope(telemetry);
    const value = await telemetry.observeCall(
      TARGET,
      async () => {
        const calls = scope.claimAttempt(2, (counts) => counts.inputTokens / 400);
        assert.ok(calls, 'claimed at the start of the attempt');
        calls.callStarted(1);
        tick(1000);
        calls.callFinished(tokens(100, 10), 'tool_calls', 'gpt-x-2025', 'resp-1');
        await new Promise((resolve) => setImmediate(resolve));
        calls.callStarted(2);
        tick(500);
        calls.callFinished(
          { inputTokens: 200, outputTokens: 20, cacheReadTokens: 50 },
          'stop',
          undefined,
          undefined,
        );
        return 'answer';
      },
      notPerAttempt,
    );
    agent.end();
    assert.equal(value, 'answer');
    const spans = exporter.getFinishedSpans();
    exporter.reset();
    const chats = spans.filter((span) => span.name === 'chat gpt-x');
    assert.equal(chats.length, 2, 'one span per model call, none for the attempt');
    for (const chat of chats) {
      assert.equal(chat.kind, SpanKind.CLIENT);
      assert.equal(chat.parentSpanContext?.spanId, agent.spanContext().spanId);
      assert.equal(chat.attributes['server.address'], 'api.example');
      assert.equal(chat.attributes['gen_ai.request.max_tokens'], 100);
      assert.equal(chat.attributes['maos.llm.attempt'], 2);
    }
    const [first, second] = chats;
    assert.equal(first?.attributes['maos.llm.step'], 1);
    assert.equal(first?.attributes['gen_ai.usage.input_tokens'], 100);
    assert.deepEqual(first?.attributes['gen_ai.response.finish_reasons'], ['tool_calls']);
    assert.equal(first?.attributes['gen_ai.response.model'], 'gpt-x-2025');
    assert.equal(first?.attributes['gen_ai.response.id'], 'resp-1');
    assert.equal(second?.attributes['maos.llm.step'], 2);
    assert.equal(second?.attributes['gen_ai.usage.input_tokens'], 200);
    assert.equal(second?.attributes['gen_ai.usage.cache_read.input_tokens'], 50);
    assert.deepEqual(second?.attributes['gen_ai.response.finish_reasons'], ['stop']);

    const text = await metrics.render();
    assert.match(text, new RegExp(`gen_ai_client_operation_duration_seconds_count\\{${LABELS}\\} 2\\n`));
    assert.match(text, new RegExp(`gen_ai_client_operation_duration_seconds_sum\\{${LABELS}\\} 1.5\\n`));
    assert.match(
      text,
      new RegExp(`gen_ai_client_token_usage_count\\{${LABELS},gen_ai_token_type="input"\\} 2`),
    );
    assert.match(
      text,
      new RegExp(`gen_ai_client_token_usage_sum\\{${LABELS},gen_ai_token_type="output"\\} 30`),
    );
    assert.match(text, /maos_llm_cost_usd_total\{provider="openai",model="gpt-x"\} 0.75\n/);
  });

  test('a failed model call is a failed span and sample; a failure between calls counts once, untimed', async () => {
    const { telemetry, metrics } = setup();
    const { agent, scope } = agentScope(telemetry);
    await assert.rejects(
      telemetry.observeCall(
        TARGET,
        async () => {
          const calls = scope.claimAttempt(1, () => 0);
          calls?.callStarted(1);
          const error = new AppError('RATE_LIMITED', 'slow down');
          calls?.callFailed(error);
          throw error;
        },
        notPerAttempt,
      ),
      /slow down/,
    );
    await assert.rejects(
      telemetry.observeCall(
        TARGET,
        async () => {
          const calls = scope.claimAttempt(2, () => 0);
          calls?.callStarted(1);
          calls?.callFinished(tokens(5, 1), 'tool_calls', undefined, undefined);
          // The attempt's timeout hits while a tool runs: no model call is in progress.
          throw new AppError('TIMEOUT', 'attempt timed out');
        },
        notPerAttempt,
      ),
      /timed out/,
    );
    agent.end();
    const chats = exporter.getFinishedSpans().filter((span) => span.name === 'chat gpt-x');
    exporter.reset();
    assert.equal(chats.length, 2);
    assert.equal(chats[0]?.status.code, SpanStatusCode.ERROR);
    assert.equal(chats[0]?.attributes['error.type'], 'rate_limited');
    assert.equal(chats[0]?.attributes['maos.llm.attempt'], 1);
    assert.equal(chats[1]?.status.code, SpanStatusCode.UNSET, 'the call that answered did not fail');
    const text = await metrics.render();
    assert.match(text, /gen_ai_client_operation_duration_seconds_count\{[^}]*error_type="rate_limited"\} 1/);
    assert.match(text, /maos_llm_provider_errors_total\{provider="openai",error_type="rate_limited"\} 1\n/);
    assert.match(text, /maos_llm_provider_errors_total\{provider="openai",error_type="timeout"\} 1\n/);
    assert.doesNotMatch(text, /gen_ai_client_operation_duration_seconds_count\{[^}]*error_type="timeout"/);
    assert.match(text, new RegExp(`gen_ai_client_operation_duration_seconds_count\\{${LABELS}\\} 1\\n`));
  });

  test('only the attempt being started can be claimed; without a recording span, metrics only', async () => {
    const { telemetry, metrics } = setup();
    const untraced = telemetry.agentScope();
    assert.equal(
      untraced.claimAttempt(1, () => 0),
      undefined,
      'no attempt is being started',
    );
    // Claimed too late (after an await): the attempt records itself, one span and one sample.
    await telemetry.observeCall(
      TARGET,
      async () => {
        await Promise.resolve();
        assert.equal(
          untraced.claimAttempt(1, () => 0),
          undefined,
        );
        return { usage: { inputTokens: 3, outputTokens: 1 } };
      },
      (value) => value.usage,
    );
    assert.equal(exporter.getFinishedSpans().filter((span) => span.name === 'chat gpt-x').length, 1);
    exporter.reset();
    // Claimed outside any agent span: samples per model call, no spans.
    await telemetry.observeCall(
      TARGET,
      async () => {
        const calls = untraced.claimAttempt(1, () => 0);
        assert.ok(calls);
        for (const step of [1, 2]) {
          calls.callStarted(step);
          calls.callFinished(tokens(10, 1), 'stop', undefined, undefined);
        }
        return 'ok';
      },
      notPerAttempt,
    );
    assert.equal(exporter.getFinishedSpans().length, 0);
    const text = await metrics.render();
    assert.match(text, new RegExp(`gen_ai_client_operation_duration_seconds_count\\{${LABELS}\\} 3\\n`));
    assert.match(
      text,
      new RegExp(`gen_ai_client_token_usage_sum\\{${LABELS},gen_ai_token_type="input"\\} 23`),
    );
  });
});
