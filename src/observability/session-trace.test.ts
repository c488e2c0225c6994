// A session's tasks join the session's trace through the stored context, including a plan task.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { trace } from '@opentelemetry/api';
import { useInMemoryTracing } from '../../test/fixtures/in-memory-tracing.ts';
import { createGenAiTracer } from './genai-spans.ts';
import { runInSessionTrace, startSessionTrace } from './session-trace.ts';

const traces = useInMemoryTracing();
const { exporter } = traces;

test('tasks run as children of the stored workflow span, in one trace', async () => {
  const genAi = createGenAiTracer({ tracer: traces.tracing.tracer, captureMessageContent: false });
  const stored = startSessionTrace(genAi, { id: 'sess-1', strategy: 'adaptive' });
  assert.ok(stored);
  // Round-trip through JSON, as a database column would.
  const reloaded = JSON.parse(JSON.stringify(stored));
  let activeTrace: string | undefined;
  await runInSessionTrace(
    genAi,
    reloaded,
    { sessionId: 'sess-1', role: 'architect', kind: 'plan', provider: 'openai' },
    async () => {},
  );
  await runInSessionTrace(
    genAi,
    reloaded,
    {
      sessionId: 'sess-1',
      role: 'engineer',
      kind: 'agent',
      provider: 'anthropic',
      model: 'claude-x',
      taskId: 't1',
    },
    async () => {
      activeTrace = trace.getActiveSpan()?.spanContext().traceId;
    },
  );
  const spans = exporter.getFinishedSpans();
  const workflow = spans.find((span) => span.name === 'invoke_workflow adaptive');
  const plan = spans.find((span) => span.name === 'plan architect');
  const agent = spans.find((span) => span.name === 'invoke_agent engineer');
  assert.ok(workflow && plan && agent);
  const traceId = workflow.spanContext().traceId;
  for (const span of [plan, agent]) {
    assert.equal(span.spanContext().traceId, traceId);
    assert.equal(span.parentSpanContext?.spanId, workflow.spanContext().spanId);
  }
  assert.equal(activeTrace, traceId);
  assert.equal(agent.attributes['gen_ai.agent.id'], 't1');
});

test('without a stored context a task still gets its own span', async () => {
  exporter.reset();
  const genAi = createGenAiTracer({ tracer: traces.tracing.tracer, captureMessageContent: false });
  await runInSessionTrace(
    genAi,
    null,
    { sessionId: 's', role: 'qa', kind: 'agent', provider: 'maos' },
    async () => {},
  );
  const [span] = exporter.getFinishedSpans();
  assert.equal(span?.name, 'invoke_agent qa');
  assert.equal(span?.parentSpanContext, undefined);
});
