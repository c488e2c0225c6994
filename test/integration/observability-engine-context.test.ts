// The engine's worker loop never runs in the context of whoever woke it: a request that creates a
// session wakes the loop, which goes on claiming, running and finishing other sessions' tasks long
// after that request was answered. Their spans and the engine's log lines about them must carry
// their own session's trace (or none), never the request's.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { context, trace } from '@opentelemetry/api';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { createGenAiTracer } from '../../src/observability/genai-spans.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { ACTOR, createHarness } from '../fixtures/engine-harness.ts';
import { useInMemoryTracing } from '../fixtures/in-memory-tracing.ts';
import { captureLog } from '../fixtures/log-capture.ts';
import { waitFor } from '../fixtures/wait-for.ts';

interface LogLine {
  message: string;
  taskId?: string;
  'trace.id'?: string;
}

const traces = useInMemoryTracing();

describe('engine trace context', () => {
  test("session B's run and the engine's lines about it do not carry the trace of the request that woke the loop", async () => {
    const log = captureLog<LogLine>();
    let releaseFirst!: () => void;
    const firstHeld = new Promise<void>((resolve) => {
      releaseFirst = resolve;
    });
    const taskSessions = new Map<string, string>();
    let harness!: Awaited<ReturnType<typeof createHarness>>;
    // A holds the one slot until released, so B's tasks are claimed later by the loop A's request
    // woke. B's runs lose their lease before they answer: the engine logs `completion rejected`.
    const runtime: AgentRuntime = {
      kind: 'llm',
      async run(task) {
        taskSessions.set(task.taskId, task.sessionId);
        if (task.name === 'first') {
          await firstHeld;
          return { output: 'first' };
        }
        await harness.handle.db
          .updateTable('tasks')
          .set({ lease_owner: 'another-replica' })
          .where('id', '=', task.taskId)
          .execute();
        return { output: task.name };
      },
    };
    harness = await createHarness({
      concurrency: 1,
      // No poll round in the test's time: only wake-ups claim (a request's, a finish's).
      pollIntervalMs: 60_000,
      llm: runtime,
      logger: createLogger({ level: 'info', destination: log.destination }),
      genAi: createGenAiTracer({ tracer: traces.tracing.tracer, captureMessageContent: false }),
    });
    try {
      const create = (name: string) =>
        harness.engine.service.createSession(ACTOR, {
          objective: name,
          agents: [{ name, role: 'engineer', task: name }],
        });
      // The claim round start() began is over (a wake-up during it is left to its end, outside
      // the request): the loop is idle, as a server's is when a request comes.
      await harness.engine.queue.drain();
      await new Promise((resolve) => setImmediate(resolve));
      // Request A: creating its session wakes the loop inside the request's span, which then ends.
      const request = traces.tracing.tracer.startSpan('POST /v1/sessions');
      const requestTrace = request.spanContext().traceId;
      const first = await context.with(trace.setSpan(context.active(), request), () => create('first'));
      request.end();
      await waitFor(() => taskSessions.size === 1, 10_000, "the first session's run");
      // B1 stores its trace; B2 has none (created while tracing was off: its runs start a new trace).
      const traced = await create('traced');
      const untraced = await create('untraced');
      await harness.handle.db
        .updateTable('sessions')
        .set({ trace_parent: null, trace_state: null })
        .where('id', '=', untraced.session.id)
        .execute();
      releaseFirst();
      const rejected = await waitFor(
        () => {
          const lines = log.lines.filter((line) => line.message.startsWith('completion rejected'));
          return lines.length === 2 ? lines : undefined;
        },
        20_000,
        "the two later sessions' rejected completions",
      );
      assert.equal((await harness.waitForSession(first.session.id)).status, 'completed');

      const spans = traces.exporter.getFinishedSpans();
      const agentOf = (sessionId: string) => {
        const span = spans.find(
          (candidate) =>
            candidate.name === 'invoke_agent engineer' &&
            candidate.attributes['gen_ai.conversation.id'] === sessionId,
        );
        assert.ok(span, `no agent span of session ${sessionId}`);
        return span;
      };
      const workflowOf = (sessionId: string) =>
        spans.find(
          (candidate) =>
            candidate.name.startsWith('invoke_workflow ') &&
            candidate.attributes['gen_ai.conversation.id'] === sessionId,
        );
      assert.equal(agentOf(first.session.id).spanContext().traceId, requestTrace);
      const tracedTrace = workflowOf(traced.session.id)?.spanContext().traceId;
      assert.ok(tracedTrace);
      assert.equal(agentOf(traced.session.id).spanContext().traceId, tracedTrace);
      assert.notEqual(
        agentOf(untraced.session.id).spanContext().traceId,
        requestTrace,
        "a session without a stored trace ran inside request A's trace",
      );
      const lineOf = (sessionId: string) => {
        const line = rejected.find((candidate) => taskSessions.get(candidate.taskId ?? '') === sessionId);
        assert.ok(line, `no completion rejected line for session ${sessionId}`);
        return line;
      };
      // The line about B1's task carries B1's own trace; the one about B2's none at all.
      assert.equal(lineOf(traced.session.id)['trace.id'], tracedTrace);
      assert.equal(lineOf(untraced.session.id)['trace.id'], undefined);
    } finally {
      releaseFirst();
      await harness.close();
    }
  });
});
