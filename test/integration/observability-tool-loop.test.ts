// What an agent's tool loop looks like in telemetry, checked against what docs/observability.md
// says: the loop (a model call that asks for a tool, the tool run, the model call that answers) is
// ONE `chat` span and ONE gen_ai_client_operation_duration_seconds sample, with the usage summed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import type { ScriptedReply } from '../fixtures/llm-server.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const DOC = readFileSync(new URL('../../docs/observability.md', import.meta.url), 'utf8');

test('an agent tool loop is one chat span and one duration sample, as the docs say', async (t) => {
  // The documented behaviour this test pins: change both together.
  assert.match(DOC, /the whole tool loop[^|]*is one sample/);
  assert.match(DOC, /the loop is one `chat` span whose usage is the sum of its model calls/);
  assert.match(DOC, /chat m\s+CLIENT\s+one per attempt \(retries, fallbacks\), tool loop included/);

  const exporter = new InMemorySpanExporter();
  const { llm, server } = await startLlmAppStack(t, {
    spanProcessors: [new SimpleSpanProcessor(exporter)],
    llm: { agentMessaging: true },
  });
  llm.setHandler((request): ScriptedReply => {
    if (!request.promptText.includes('Your task (scout)')) return { text: 'written' };
    // The scout asks for a tool first, then answers once the tool result is in its prompt.
    return request.promptText.includes('Message delivered')
      ? { text: 'done', usage: { inputTokens: 200, outputTokens: 20 } }
      : {
          toolCalls: [{ id: 'call-1', name: 'send_message', input: { to: 'writer', message: 'hi' } }],
          usage: { inputTokens: 100, outputTokens: 10 },
        };
  });
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'Research and write',
      strategy: 'sequential',
      agents: [
        { name: 'scout', role: 'researcher', task: 'Find facts' },
        { name: 'writer', role: 'documenter', task: 'Write it up' },
      ],
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const done = await waitForSession<{ status: string; error: string | null }>(server.url, created.body.id);
  assert.equal(done.status, 'completed', done.error ?? '');

  const scoutCalls = llm.requests.filter((request) => request.promptText.includes('Your task (scout)'));
  assert.equal(scoutCalls.length, 2, 'the scout made two model calls');
  const spans = exporter.getFinishedSpans();
  const scout = spans.find((span) => span.name === 'invoke_agent researcher');
  assert.ok(scout);
  const childrenOf = (name: string) =>
    spans.filter(
      (span) => span.name === name && span.parentSpanContext?.spanId === scout.spanContext().spanId,
    );
  const chats = childrenOf('chat m');
  assert.equal(chats.length, 1, 'the tool loop is one chat span');
  assert.equal(chats[0]?.attributes['gen_ai.usage.input_tokens'], 300);
  assert.equal(chats[0]?.attributes['gen_ai.usage.output_tokens'], 30);
  assert.equal(childrenOf('execute_tool send_message').length, 1, 'the tool span is its sibling');

  // Three model calls in all (two by the scout, one by the writer), two duration samples.
  assert.equal(llm.requests.length, 3);
  const metrics = await fetch(`${server.url}/metrics`).then((response) => response.text());
  const count =
    /^gen_ai_client_operation_duration_seconds_count\{[^}]*gen_ai_request_model="m"[^}]*\} (\d+)$/m;
  assert.equal(Number(count.exec(metrics)?.[1]), 2);
});
