// An agent's `send_message` from a run that no longer holds its task (its session was cancelled, or
// its lease was taken over by another attempt) stores nothing: no message, no `agent.message` event
// after the session's `session.finished`. The tool answers with an error saying the task has ended,
// and the engine stops the run as a fenced one. The store's check runs under the session's lock, as
// an output flush's does, so a cancel committing while the message waits is seen (PostgreSQL); it is
// the check output lines are stored under (store/task-claims.ts), held here for both.
// SQLite and PostgreSQL; the store's messaging directly, then the real app with a scripted LLM.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ToolSet } from 'ai';
import {
  createMessagingTools,
  createStoreMessaging,
  RUN_ENDED_MESSAGE,
} from '../../src/agents/runtimes/ai-sdk/agent-tools.ts';
import type { AgentRuntime, RuntimeTask } from '../../src/agents/runtimes/runtime.ts';
import type { Claim } from '../../src/engine/task-outcome.ts';
import { appendTaskOutput, recordRunsProgress } from '../../src/engine/task-output.ts';
import { appendEvents } from '../../src/store/event-store.ts';
import { holdsSenderClaim } from '../../src/store/message-store.ts';
import { lockSessions } from '../../src/store/session-locks.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { scrapeSample } from '../fixtures/metrics-scrape.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { waitForLockWaiter } from '../fixtures/pause-query.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { readAllEvents, requestJson } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const idle: AgentRuntime = { kind: 'llm', run: async () => ({ output: 'x' }) };

interface Setup {
  h: Harness;
  sessionId: string;
  /** The task of agent `a`, running as attempt 1 of owner `W`. */
  task: RuntimeTask;
}

/** A session of agents `a` and `b` whose task of `a` runs under owner `W`, attempt 1 (no engine runs it). */
async function setUp(
  t: { after(fn: () => Promise<void>): void },
  store: 'sqlite' | 'postgres',
): Promise<Setup> {
  let storeUrl: string | undefined;
  if (store === 'postgres') {
    const database = await createTestDatabase();
    t.after(() => database.drop());
    storeUrl = database.url;
  }
  const h = await createHarness({
    concurrency: 0,
    start: false,
    llm: idle,
    ...(storeUrl ? { storeUrl } : {}),
  });
  t.after(() => h.close());
  const { session } = await h.engine.service.createSession(ACTOR, {
    objective: 'fence',
    agents: [
      { name: 'a', role: 'engineer', task: 'work' },
      { name: 'b', role: 'engineer', task: 'read' },
    ],
  });
  const row = await h.handle.db
    .updateTable('tasks')
    .set({ status: 'running', lease_owner: 'W', attempts: 1, lease_expires_at: Date.now() + 60_000 })
    .where('session_id', '=', session.id)
    .where('name', '=', 'a')
    .returningAll()
    .executeTakeFirstOrThrow();
  const task: RuntimeTask = {
    sessionId: session.id,
    tenantId: row.tenant_id,
    objective: 'fence',
    taskId: row.id,
    name: row.name,
    role: row.role,
    instructions: row.instructions,
    runner: null,
    agentId: row.agent_id,
    attempt: 1,
    dependencies: [],
    kind: 'agent',
  };
  return { h, sessionId: session.id, task };
}

/** Runs the tool set's `send_message` as the model would call it. */
function send(tools: ToolSet, to: string, message: string): Promise<unknown> {
  const execute = tools.send_message?.execute as
    | ((input: unknown, options: { toolCallId: string; messages: []; abortSignal: AbortSignal }) => unknown)
    | undefined;
  assert.ok(execute);
  return Promise.resolve(
    execute(
      { to, message },
      { toolCallId: 'call-1', messages: [], abortSignal: new AbortController().signal },
    ),
  );
}

async function storedMessages(h: Harness, sessionId: string): Promise<string[]> {
  const rows = await h.handle.db
    .selectFrom('messages')
    .select('body')
    .where('session_id', '=', sessionId)
    .execute();
  return rows.map((row) => row.body);
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`send_message from a run that no longer holds its task (${store})`, { timeout: 60_000 }, () => {
    test('after a cancel: nothing stored, the tool answers the task has ended, the run is stopped', async (t) => {
      const { h, sessionId, task } = await setUp(t, store);
      await h.engine.service.cancelSession(ACTOR, sessionId);
      let lost = 0;
      const tools = createMessagingTools(createStoreMessaging(h.handle.db), task, {
        leaseOwner: 'W',
        claimLost: () => {
          lost += 1;
        },
      });
      await assert.rejects(
        send(tools, 'b', 'late news'),
        (error: Error) => error.message === RUN_ENDED_MESSAGE,
      );
      assert.equal(lost, 1, 'the engine is told to stop the run');
      assert.deepEqual(await storedMessages(h, sessionId), []);
      const events = await h.allEvents(sessionId);
      assert.equal(events.at(-1)?.type, 'session.finished');
      assert.ok(!events.some((event) => event.type === 'agent.message'));
    });

    test("after a lease takeover: the old attempt's message is refused, the new attempt's stored", async (t) => {
      const { h, sessionId, task } = await setUp(t, store);
      // The lease ran out and another worker claimed the task again (attempt 2).
      await h.handle.db
        .updateTable('tasks')
        .set({ lease_owner: 'X', attempts: 2 })
        .where('id', '=', task.taskId)
        .execute();
      const messaging = createStoreMessaging(h.handle.db);
      let lost = 0;
      const stale = createMessagingTools(messaging, task, {
        leaseOwner: 'W',
        claimLost: () => {
          lost += 1;
        },
      });
      await assert.rejects(
        send(stale, 'b', 'from attempt 1'),
        (error: Error) => error.message === RUN_ENDED_MESSAGE,
      );
      assert.equal(lost, 1);
      // The same owner with the old attempt is no claim either.
      const sameOwner = createMessagingTools(messaging, task, { leaseOwner: 'X' });
      await assert.rejects(send(sameOwner, 'b', 'from attempt 1'), /no longer runs/);
      const current = createMessagingTools(messaging, { ...task, attempt: 2 }, { leaseOwner: 'X' });
      assert.match(String(await send(current, 'b', 'from attempt 2')), /Message delivered to b/);
      assert.deepEqual(await storedMessages(h, sessionId), ['from attempt 2']);
      const events = (await h.allEvents(sessionId)).filter((event) => event.type === 'agent.message');
      assert.deepEqual(
        events.map((event) => (event.data as { text: string }).text),
        ['from attempt 2'],
      );
    });

    test('output lines and messages share the fence: another owner, attempt, status, session or tenant holds no claim', async (t) => {
      const { h, sessionId, task } = await setUp(t, store);
      // b's run under the same owner and attempt has ended: its task is no longer claimed.
      const b = await h.handle.db
        .updateTable('tasks')
        .set({ status: 'cancelled', lease_owner: 'W', attempts: 1 })
        .where('session_id', '=', sessionId)
        .where('name', '=', 'b')
        .returning(['id', 'name'])
        .executeTakeFirstOrThrow();
      const held: Claim = { ...task, owner: 'W' };
      // Each wrong in one part only: owner, attempt, status.
      const lost: Claim[] = [
        { ...held, owner: 'X' },
        { ...held, attempt: 2 },
        { ...held, taskId: b.id, name: b.name },
      ];
      const lines = (claim: Claim) => [
        { stream: 'text' as const, line: `${claim.owner} ${claim.attempt} ${claim.name}` },
      ];
      const db = h.handle.db;
      const flushed = await db.transaction().execute((trx) =>
        recordRunsProgress(
          trx,
          [held, ...lost].map((claim) => ({ claim, lines: lines(claim) })),
          Date.now(),
        ),
      );
      assert.deepEqual(flushed, [true, false, false, false]);
      const appended = await db.transaction().execute(async (trx) => {
        const results: boolean[] = [];
        for (const claim of [held, ...lost])
          results.push(await appendTaskOutput(trx, claim, lines(claim), Date.now()));
        return results;
      });
      assert.deepEqual(appended, [true, false, false, false]);
      const output = (await h.allEvents(sessionId)).filter((event) => event.type === 'task.output');
      assert.deepEqual(
        output.map((event) => (event.data as { line: string }).line),
        ['W 1 a', 'W 1 a'],
      );
      const scope = { tenantId: task.tenantId, sessionId };
      const senders = await db.transaction().execute(async (trx) => {
        const results: boolean[] = [];
        for (const claim of [held, ...lost]) results.push(await holdsSenderClaim(trx, scope, claim));
        // The claim holds, but its task is not in the session or tenant the message names.
        results.push(await holdsSenderClaim(trx, { ...scope, sessionId: 'another-session' }, held));
        results.push(await holdsSenderClaim(trx, { ...scope, tenantId: 'another-tenant' }, held));
        return results;
      });
      assert.deepEqual(senders, [true, false, false, false, false, false]);
    });
  });
}

test('postgres: a message waiting while a cancel commits is not appended after session.finished', {
  timeout: 60_000,
}, async (t) => {
  const { h, sessionId, task } = await setUp(t, 'postgres');
  const db = h.handle.db;
  const ref = { id: sessionId, tenantId: task.tenantId };
  // A cancel as another replica makes it, held open before its commit: session locked, tasks
  // cancelled, final event appended.
  let commit: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    commit = resolve;
  });
  let written: () => void = () => {};
  const cancelWritten = new Promise<void>((resolve) => {
    written = resolve;
  });
  const cancel = db.transaction().execute(async (trx) => {
    await lockSessions(trx, [sessionId], ref.tenantId);
    await trx.updateTable('tasks').set({ status: 'cancelled' }).where('session_id', '=', sessionId).execute();
    await trx.updateTable('sessions').set({ status: 'cancelled' }).where('id', '=', sessionId).execute();
    await appendEvents(
      trx,
      ref,
      [
        { type: 'session.status', data: { from: 'running', to: 'cancelled' } },
        {
          type: 'session.finished',
          data: {
            status: 'cancelled',
            error: 'cancelled on request',
            result: null,
            usage: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 },
          },
        },
      ],
      Date.now(),
    );
    written();
    await held;
  });
  await cancelWritten;
  const tools = createMessagingTools(createStoreMessaging(db), task, { leaseOwner: 'W' });
  const sent = send(tools, 'b', 'racing the cancel').then(
    () => 'sent',
    (error: Error) => error.message,
  );
  await waitForLockWaiter(db);
  commit();
  await cancel;
  assert.equal(await sent, RUN_ENDED_MESSAGE);
  assert.deepEqual(await storedMessages(h, sessionId), []);
  const events = await h.allEvents(sessionId);
  assert.equal(events.at(-1)?.type, 'session.finished');
});

interface SessionView {
  status: string;
  usage: { inputTokens: number };
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`an agent's run whose task was taken over while it called send_message (${store})`, {
    timeout: 60_000,
  }, () => {
    test('stores no message and stops at the tool call; its spend is charged', async (t) => {
      const stack = await startOrchestratorStack(t, { store, llm: { agentMessaging: true } });
      const db = stack.server.app.database.db;
      stack.llm.setHandler(async (request) => {
        if (llmRequestKind(request) !== 'agent') return { text: 'unused' };
        if (!request.promptText.includes('Your task (scout)')) return { text: 'written' };
        // While the model answers, another worker takes the task over (its lease ran out): the run
        // this answer goes to holds its task no longer.
        await db
          .updateTable('tasks')
          .set((eb) => ({ lease_owner: 'another-replica', attempts: eb('attempts', '+', 1) }))
          .where('name', '=', 'scout')
          .where('status', '=', 'running')
          .execute();
        return { toolCalls: [{ name: 'send_message', input: { to: 'writer', message: 'too late' } }] };
      });
      const id = await stack.submit({
        objective: 'Research and write',
        strategy: 'sequential',
        agents: [
          { name: 'scout', role: 'researcher', task: 'Find facts' },
          { name: 'writer', role: 'documenter', task: 'Write it up' },
        ],
      });
      // The stopped run's spend is charged to the session when the run has ended.
      await stack.wait<SessionView>(id, (session) => session.usage.inputTokens > 0);
      const scoutCalls = stack.llm.requests.filter((request) =>
        request.promptText.includes('Your task (scout)'),
      );
      assert.equal(
        scoutCalls.length,
        1,
        'the run stopped at the refused tool call instead of calling the model again',
      );
      const messages = await db.selectFrom('messages').select('body').where('session_id', '=', id).execute();
      assert.deepEqual(messages, []);
      // The operator sees the refusal: counted apart from the messages stored.
      assert.equal(
        await scrapeSample(stack.server.url, 'maos_agent_messages_total{outcome="claim_lost"}'),
        1,
      );
      assert.equal(await scrapeSample(stack.server.url, 'maos_agent_messages_total{outcome="stored"}'), 0);
      const cancelled = await requestJson(`${stack.server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
      assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
      const events = await readAllEvents<{ seq: number; type: string }>(stack.server.url, id);
      assert.ok(!events.some((event) => event.type === 'agent.message'));
      assert.equal(events.at(-1)?.type, 'session.finished');
    });
  });
}
