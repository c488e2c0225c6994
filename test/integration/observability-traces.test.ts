// Traces of a running server, in the in-memory span exporter: database spans under the request that
// ran the query, one trace per session whose task spans continue it across a restart, tool spans.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { SpanKind } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import type { ScriptedReply } from '../fixtures/llm-server.ts';
import { runScoutThenWriter } from '../fixtures/scout-writer.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

interface Session {
  id: string;
  status: string;
}

/** The SDK's in-memory exporter, except that stopping the server (shutdown) keeps its spans. */
class KeepingSpanExporter extends InMemorySpanExporter {
  override shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Span processors for a test server, and the spans it ended so far (also after it stopped). */
function traced(): { readonly spans: ReadableSpan[]; spanProcessors: SpanProcessor[] } {
  const exporter = new KeepingSpanExporter();
  return {
    get spans() {
      return exporter.getFinishedSpans();
    },
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  };
}

function named(spans: ReadableSpan[], name: string): ReadableSpan {
  const span = spans.find((candidate) => candidate.name === name);
  assert.ok(span, `no span named ${name} among ${[...new Set(spans.map((s) => s.name))].join(', ')}`);
  return span;
}

describe('database spans', () => {
  test('queries a request runs become CLIENT spans with db.* attributes inside its trace', async () => {
    const collected = traced();
    const { spanProcessors } = collected;
    const server = await startTestServer({ spanProcessors, config: { workers: { concurrency: 0 } } });
    try {
      const created = await requestJson<Session>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: { objective: 'db spans', agents: [{ name: 'a', role: 'qa', task: 'x', runner: 'ok' }] },
      });
      assert.equal(created.status, 201);
      const spans = [...collected.spans];
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

  test("the worker loop a request woke adds no query to that request's trace after it ended", async () => {
    // One slot: session B's task waits until session A's is done, and is then claimed by the loop
    // that A's request woke (it ran on in that request's context). B's claim and finish, and A's
    // own finish, were spans under A's request, which had long been answered.
    const collected = traced();
    const server = await startTestServer({
      spanProcessors: collected.spanProcessors,
      config: { workers: { concurrency: 1 } },
    });
    try {
      const submit = (objective: string, runner: string) =>
        requestJson<Session>(`${server.url}/v1/sessions`, {
          method: 'POST',
          body: { objective, agents: [{ name: 'a', role: 'qa', task: 'x', runner }] },
        });
      const first = await submit('first', 'slow');
      const second = await submit('second', 'ok');
      assert.equal(first.status, 201);
      assert.equal(second.status, 201);
      for (const created of [first, second]) {
        const session = await waitForSession<Session>(server.url, created.body.id);
        assert.equal(session.status, 'completed');
      }
      const spans = [...collected.spans];
      const agentOf = (sessionId: string) =>
        spans.find(
          (span) =>
            span.name === 'invoke_agent qa' && span.attributes['gen_ai.conversation.id'] === sessionId,
        );
      const traceOfFirst = agentOf(first.body.id)?.spanContext().traceId;
      assert.ok(traceOfFirst, 'the first session has its agent span');
      assert.notEqual(agentOf(second.body.id)?.spanContext().traceId, traceOfFirst);
      // Claims and finishes are updates of tasks: in A's trace at most A's own claim, made while its
      // request was being answered.
      const taskUpdates = spans.filter(
        (span) => span.spanContext().traceId === traceOfFirst && span.name === 'UPDATE tasks',
      );
      assert.ok(
        taskUpdates.length <= 1,
        `task updates in the first session's trace: ${taskUpdates.map((span) => String(span.attributes['db.query.text']).slice(0, 60)).join(' | ')}`,
      );
    } finally {
      await server.close();
    }
  });
});

interface SessionWithTasks extends Session {
  tasks: Array<{ name: string; status: string }>;
}

const TWO_STEPS = {
  objective: 'two steps',
  strategy: 'sequential',
  agents: [
    { name: 'first', role: 'qa', task: 'one', runner: 'ok' },
    { name: 'second', role: 'qa', task: 'two', runner: 'sleep' },
  ],
};

describe('one trace per session', () => {
  test('workflow → agent spans: every task attempt continues the trace stored with the session', async () => {
    const collected = traced();
    const { spanProcessors } = collected;
    const server = await startTestServer({ spanProcessors });
    try {
      const created = await requestJson<Session>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: {
          objective: 'traced',
          strategy: 'sequential',
          agents: [
            { name: 'a', role: 'qa', task: 'one', runner: 'ok' },
            { name: 'b', role: 'engineer', task: 'two', runner: 'echo' },
          ],
        },
      });
      assert.equal(created.status, 201);
      assert.equal((await waitForSession(server.url, created.body.id)).status, 'completed');
      const spans = [...collected.spans];
      const request = named(spans, 'POST /v1/sessions');
      const workflow = named(spans, 'invoke_workflow sequential');
      assert.equal(workflow.parentSpanContext?.spanId, request.spanContext().spanId);
      assert.equal(workflow.attributes['gen_ai.conversation.id'], created.body.id);
      const agents = spans.filter((span) => span.name.startsWith('invoke_agent '));
      assert.deepEqual(agents.map((span) => span.name).sort(), ['invoke_agent engineer', 'invoke_agent qa']);
      for (const agent of agents) {
        assert.equal(agent.spanContext().traceId, workflow.spanContext().traceId);
        assert.equal(agent.parentSpanContext?.spanId, workflow.spanContext().spanId);
        assert.equal(agent.attributes['gen_ai.operation.name'], 'invoke_agent');
        assert.equal(agent.attributes['gen_ai.conversation.id'], created.body.id);
        assert.ok(agent.attributes['gen_ai.provider.name']);
      }
    } finally {
      await server.close();
    }
  });

  test('one trace id across a restart: tasks run after the restart join the stored trace', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'maos-trace-restart-'));
    try {
      const before = traced();
      const first = await startTestServer({ dataDir, spanProcessors: before.spanProcessors });
      let sessionId: string;
      try {
        const created = await requestJson<Session>(`${first.url}/v1/sessions`, {
          method: 'POST',
          body: TWO_STEPS,
        });
        assert.equal(created.status, 201);
        sessionId = created.body.id;
        // `second` runs `sleep 30`: stop the server while it runs, so its lease is handed back.
        await waitForSession<SessionWithTasks>(first.url, sessionId, (session) =>
          session.tasks.some((task) => task.name === 'second' && task.status === 'running'),
        );
      } finally {
        await first.close();
      }
      const workflow = named(before.spans, 'invoke_workflow sequential');
      const traceId = workflow.spanContext().traceId;

      const after = traced();
      // After the restart `sleep` finishes at once, so the released task completes here.
      const second = await startTestServer({
        dataDir,
        spanProcessors: after.spanProcessors,
        config: { runners: { ok: { command: ['true'] }, sleep: { command: ['true'] } } },
      });
      try {
        assert.equal((await waitForSession(second.url, sessionId)).status, 'completed');
      } finally {
        await second.close();
      }
      const resumed = after.spans.filter((span) => span.name === 'invoke_agent qa');
      assert.equal(resumed.length, 1, 'the released task ran once after the restart');
      assert.equal(resumed[0]?.spanContext().traceId, traceId);
      assert.equal(resumed[0]?.parentSpanContext?.spanId, workflow.spanContext().spanId);
      const beforeAgents = before.spans.filter((span) => span.name === 'invoke_agent qa');
      assert.equal(beforeAgents.length, 2, 'first ran, second was interrupted by the stop');
      for (const span of beforeAgents) assert.equal(span.spanContext().traceId, traceId);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('tool spans of LLM agents', () => {
  const SEND = { to: 'writer', message: 'Mention the rate limits' };

  async function runWithToolCall(t: TestContext, config: Record<string, unknown> = {}) {
    const collected = traced();
    const { llm, server } = await startLlmAppStack(t, {
      spanProcessors: collected.spanProcessors,
      llm: { agentMessaging: true },
      config,
    });
    llm.setHandler((request): ScriptedReply => {
      // The scout sends one message, then answers once the tool result is in its prompt.
      if (
        request.promptText.includes('Your task (scout)') &&
        !request.promptText.includes('Message delivered')
      ) {
        return { toolCalls: [{ id: 'call-42', name: 'send_message', input: SEND }] };
      }
      return { text: 'done' };
    });
    await runScoutThenWriter(server.url);
    return [...collected.spans];
  }

  test('each tool call is an execute_tool span under the agent span, without arguments by default', async (t) => {
    const spans = await runWithToolCall(t);
    const tool = named(spans, 'execute_tool send_message');
    const agent = spans.find(
      (span) =>
        span.name === 'invoke_agent researcher' &&
        span.spanContext().spanId === tool.parentSpanContext?.spanId,
    );
    assert.ok(agent, 'the tool span is a child of the researcher agent span');
    assert.equal(tool.kind, SpanKind.INTERNAL);
    assert.equal(tool.attributes['gen_ai.operation.name'], 'execute_tool');
    assert.equal(tool.attributes['gen_ai.tool.name'], 'send_message');
    assert.equal(tool.attributes['gen_ai.tool.call.id'], 'call-42');
    assert.equal(tool.attributes['gen_ai.tool.type'], 'function');
    assert.equal(tool.attributes['gen_ai.tool.call.arguments'], undefined);
    assert.equal(tool.attributes['gen_ai.tool.call.result'], undefined);
    assert.doesNotMatch(JSON.stringify(tool.attributes), /rate limits/);
    // The agent span names the provider and model that served it; chat spans are its children too.
    assert.equal(agent.attributes['gen_ai.provider.name'], 'local');
    assert.equal(agent.attributes['gen_ai.request.model'], 'm');
    const chat = named(spans, 'chat m');
    assert.equal(chat.spanContext().traceId, agent.spanContext().traceId);
  });

  test('with content capture opted in, arguments and result are recorded', async (t) => {
    const spans = await runWithToolCall(t, { tracing: { captureMessageContent: true } });
    const tool = named(spans, 'execute_tool send_message');
    assert.deepEqual(JSON.parse(String(tool.attributes['gen_ai.tool.call.arguments'])), SEND);
    assert.equal(tool.attributes['gen_ai.tool.call.result'], 'Message delivered to writer.');
  });
});

describe('orchestrator planning in the session trace', () => {
  test('planning an objective-only session is a plan span under the workflow, with its model call', async (t) => {
    const collected = traced();
    const { llm, server } = await startLlmAppStack(t, { spanProcessors: collected.spanProcessors });
    llm.setHandler((request): ScriptedReply => {
      if (request.body.response_format !== undefined) {
        const task = {
          name: 'research',
          role: 'researcher',
          instructions: 'Look',
          depends_on: [],
          deliverables: [],
          agent: null,
        };
        return { object: { rationale: 'r', phases: [{ name: 'main', tasks: [task] }] } };
      }
      return { text: 'done' };
    });
    const created = await requestJson<Session>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Find out' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await waitForSession(server.url, created.body.id);
    const spans = [...collected.spans];
    const workflow = spans.find((span) => span.name.startsWith('invoke_workflow '));
    assert.ok(workflow);
    const plan = spans.find(
      (span) =>
        span.name === 'plan orchestrator' && span.parentSpanContext?.spanId === workflow.spanContext().spanId,
    );
    assert.ok(plan, `no plan span under the workflow among ${spans.map((span) => span.name).join(', ')}`);
    assert.equal(plan.attributes['gen_ai.operation.name'], 'plan');
    assert.ok(
      spans.some(
        (span) => span.name === 'chat m' && span.parentSpanContext?.spanId === plan.spanContext().spanId,
      ),
      'the planning model call is a chat span under the plan span',
    );
    const agent = spans.find((span) => span.name === 'invoke_agent researcher');
    assert.equal(agent?.spanContext().traceId, workflow.spanContext().traceId);
  });
});
