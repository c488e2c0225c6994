// What an agent's tool loop looks like in telemetry, checked against what docs/observability.md
// says: every model call of the loop is its own `chat` span under the agent span, with its own
// usage, and its own gen_ai_client_operation_duration_seconds and token samples; the tool runs are
// `execute_tool` spans between them; a retried attempt's failed model call is a failed span.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, type TestContext, test } from 'node:test';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import type { RecordedLlmRequest, ScriptedReply } from '../fixtures/llm-server.ts';
import { runScoutThenWriter } from '../fixtures/scout-writer.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const DOC = readFileSync(new URL('../../docs/observability.md', import.meta.url), 'utf8');
const SCOUT = 'Your task (scout)';

/** The scout's replies: a tool call per step until it has sent two messages, then its answer. */
function scoutLoop(request: RecordedLlmRequest): ScriptedReply {
  const delivered = request.promptText.split('Message delivered').length - 1;
  if (delivered >= 2) return { text: 'done', usage: { inputTokens: 300, outputTokens: 30 } };
  return {
    toolCalls: [
      { id: `call-${delivered + 1}`, name: 'send_message', input: { to: 'writer', message: 'hi' } },
    ],
    usage: { inputTokens: 100 * (delivered + 1), outputTokens: 10 * (delivered + 1) },
  };
}

/** Runs a scout (the tool loop) and a writer session; returns the spans and the metrics scrape. */
async function runToolLoop(
  t: TestContext,
  options: {
    llm?: Record<string, unknown>;
    failFirstScoutCall?: boolean;
    traced?: boolean;
    /** The scout's model refuses tools (a 400 saying so) and answers when asked without them. */
    toolsRefused?: boolean;
  } = {},
): Promise<{ spans: ReadableSpan[]; metrics: string; scoutCalls: number }> {
  const exporter = new InMemorySpanExporter();
  const { llm, server } = await startLlmAppStack(t, {
    ...(options.traced === false ? {} : { spanProcessors: [new SimpleSpanProcessor({ exporter })] }),
    llm: { agentMessaging: true, ...options.llm },
  });
  let failNext = options.failFirstScoutCall === true;
  llm.setHandler((request): ScriptedReply => {
    if (!request.promptText.includes(SCOUT)) {
      return { text: 'written', usage: { inputTokens: 7, outputTokens: 1 } };
    }
    if (failNext) {
      failNext = false;
      return { error: 503, message: 'overloaded' };
    }
    if (options.toolsRefused) {
      if (request.toolNames.length > 0) return { error: 400, message: 'this model does not support tools' };
      return { text: 'done without tools', usage: { inputTokens: 50, outputTokens: 5 } };
    }
    return scoutLoop(request);
  });
  await runScoutThenWriter(server.url);
  const metrics = await fetch(`${server.url}/metrics`).then((response) => response.text());
  const scoutCalls = llm.requests.filter((request) => request.promptText.includes(SCOUT)).length;
  return { spans: exporter.getFinishedSpans(), metrics, scoutCalls };
}

function scoutSpans(spans: ReadableSpan[]): { chats: ReadableSpan[]; tools: ReadableSpan[] } {
  const scout = spans.find((span) => span.name === 'invoke_agent researcher');
  assert.ok(scout, 'the scout has an agent span');
  const children = (name: string) =>
    spans
      .filter((span) => span.name === name && span.parentSpanContext?.spanId === scout.spanContext().spanId)
      .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
  return { chats: children('chat m'), tools: children('execute_tool send_message') };
}

/** A sample count of the model `m` from the scrape (the first series matching `labels`). */
function sampleCount(metrics: string, metric: string, labels = ''): number {
  const pattern = new RegExp(
    `^${metric}_count\\{[^}]*gen_ai_request_model="m"[^}]*${labels}[^}]*\\} (\\d+)$`,
    'm',
  );
  return Number(pattern.exec(metrics)?.[1] ?? 0);
}

function sampleSum(metrics: string, metric: string, labels: string): number {
  const pattern = new RegExp(
    `^${metric}_sum\\{[^}]*gen_ai_request_model="m"[^}]*${labels}[^}]*\\} (\\d+)$`,
    'm',
  );
  return Number(pattern.exec(metrics)?.[1] ?? Number.NaN);
}

describe('an agent tool loop in telemetry', () => {
  test('each model call is a chat span under the agent span with its own usage and samples', async (t) => {
    // The documented behaviour this test pins: change both together.
    assert.match(DOC, /chat m\s+CLIENT\s+one per model call/);
    assert.match(DOC, /one sample per model call/);

    const { spans, metrics, scoutCalls } = await runToolLoop(t);
    assert.equal(scoutCalls, 3, 'the scout called the model three times (two tool calls, then its answer)');
    const { chats, tools } = scoutSpans(spans);
    assert.equal(chats.length, 3, 'one chat span per model call');
    assert.equal(tools.length, 2, 'the two tool runs are execute_tool spans, siblings of the chat spans');
    for (const [index, chat] of chats.entries()) {
      assert.equal(chat.kind, SpanKind.CLIENT);
      assert.equal(chat.attributes['gen_ai.operation.name'], 'chat');
      assert.equal(chat.attributes['gen_ai.provider.name'], 'local');
      assert.equal(chat.attributes['gen_ai.request.model'], 'm');
      assert.equal(chat.attributes['gen_ai.response.model'], 'm');
      assert.equal(chat.attributes['server.address'], '127.0.0.1');
      assert.equal(chat.attributes['maos.llm.attempt'], 1);
      assert.equal(chat.attributes['maos.llm.step'], index + 1);
      assert.equal(chat.attributes['gen_ai.usage.input_tokens'], 100 * (index + 1));
      assert.equal(chat.attributes['gen_ai.usage.output_tokens'], 10 * (index + 1));
      assert.deepEqual(chat.attributes['gen_ai.response.finish_reasons'], [
        index < 2 ? 'tool_calls' : 'stop',
      ]);
      assert.equal(chat.status.code, SpanStatusCode.UNSET);
    }
    // The spans follow the loop: call, tool, call, tool, call.
    const order = [chats[0], tools[0], chats[1], tools[1], chats[2]].map((span) => span?.startTime);
    const asNanos = (time: [number, number] | undefined) => (time ? time[0] * 1e9 + time[1] : Number.NaN);
    for (let i = 1; i < order.length; i++) {
      assert.ok(
        asNanos(order[i - 1]) <= asNanos(order[i]),
        `span ${i} of the loop starts after span ${i - 1}`,
      );
    }
    assert.equal(tools[0]?.attributes['gen_ai.tool.call.id'], 'call-1');
    assert.equal(tools[1]?.attributes['gen_ai.tool.call.id'], 'call-2');

    // Four model calls of model m (three by the scout, one by the writer): four samples each.
    assert.equal(sampleCount(metrics, 'gen_ai_client_operation_duration_seconds'), 4);
    assert.equal(sampleCount(metrics, 'gen_ai_client_token_usage', 'gen_ai_token_type="input"'), 4);
    assert.equal(sampleCount(metrics, 'gen_ai_client_token_usage', 'gen_ai_token_type="output"'), 4);
    assert.equal(sampleSum(metrics, 'gen_ai_client_token_usage', 'gen_ai_token_type="input"'), 607);
    assert.doesNotMatch(metrics, /error_type="/);
  });

  test('a retried attempt shows its failed model call as a failed chat span and sample', async (t) => {
    const { spans, metrics, scoutCalls } = await runToolLoop(t, {
      llm: { retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } },
      failFirstScoutCall: true,
    });
    assert.equal(scoutCalls, 4, 'one failed call, then the three calls of the loop');
    const { chats } = scoutSpans(spans);
    assert.equal(chats.length, 4);
    const [failed, ...retried] = chats;
    assert.equal(failed?.status.code, SpanStatusCode.ERROR);
    assert.equal(failed?.attributes['error.type'], 'server_error');
    assert.equal(failed?.attributes['maos.llm.attempt'], 1);
    assert.equal(failed?.attributes['maos.llm.step'], 1);
    assert.equal(failed?.attributes['gen_ai.usage.input_tokens'], undefined);
    assert.deepEqual(
      retried.map((chat) => [chat.attributes['maos.llm.attempt'], chat.attributes['maos.llm.step']]),
      [
        [2, 1],
        [2, 2],
        [2, 3],
      ],
    );
    assert.ok(retried.every((chat) => chat.status.code === SpanStatusCode.UNSET));
    assert.equal(
      sampleCount(metrics, 'gen_ai_client_operation_duration_seconds', 'error_type="server_error"'),
      1,
    );
    assert.match(
      metrics,
      /^maos_llm_provider_errors_total\{provider="local",error_type="server_error"\} 1$/m,
    );
    // Five model calls in all: the failed one, the scout's three, the writer's one.
    const all = [...metrics.matchAll(/^gen_ai_client_operation_duration_seconds_count\{[^}]*\} (\d+)$/gm)];
    assert.equal(
      all.reduce((sum, match) => sum + Number(match[1]), 0),
      5,
    );
  });

  test('a model that refuses tools is no provider error: its refused call is a span, not a sample', async (t) => {
    const { spans, metrics, scoutCalls } = await runToolLoop(t, { toolsRefused: true });
    assert.equal(scoutCalls, 2, 'the refused call with tools, then the call without them');
    const { chats } = scoutSpans(spans);
    assert.equal(chats.length, 2);
    assert.equal(chats[0]?.attributes['error.type'], 'tools_unsupported');
    assert.equal(chats[1]?.status.code, SpanStatusCode.UNSET);
    // Two answered calls (scout without tools, writer): no error sample, no provider error.
    assert.equal(sampleCount(metrics, 'gen_ai_client_operation_duration_seconds'), 2);
    assert.doesNotMatch(metrics, /error_type="/);
  });

  test('with tracing off, the samples are per model call all the same', async (t) => {
    const { metrics, scoutCalls } = await runToolLoop(t, { traced: false });
    assert.equal(scoutCalls, 3);
    assert.equal(sampleCount(metrics, 'gen_ai_client_operation_duration_seconds'), 4);
    assert.equal(sampleCount(metrics, 'gen_ai_client_token_usage', 'gen_ai_token_type="input"'), 4);
    assert.equal(sampleSum(metrics, 'gen_ai_client_token_usage', 'gen_ai_token_type="input"'), 607);
  });
});
