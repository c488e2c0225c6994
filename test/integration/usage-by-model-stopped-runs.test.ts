// LLM runs stopped before their finish still count under the models that served them: a run
// cancelled mid-stream, and the runs of a session whose budget is crossed mid-stream (the one the
// budget stopped, and the one cancelled with the session). The spend each run recorded while it
// streamed is charged by the cancel with its models, and what the run spent beyond it by the run
// itself; the task's `models` add up to its usage and GET /v1/usage?groupBy=model has nothing
// unattributed. Over HTTP with two scripted LLM servers, on SQLite and PostgreSQL (PostgreSQL needs
// --test-global-setup=test/fixtures/postgres-global-setup.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Usage } from '../../src/domain/types.ts';
import { type LlmHandler, type ScriptedLlmServer, startLlmServer } from '../fixtures/llm-server.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';
import { twoModelConfig } from '../fixtures/two-model-config.ts';
import { waitFor } from '../fixtures/wait-for.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

type ModelUsage = Usage & { provider: string; model: string };

interface TaskView {
  id: string;
  name: string;
  status: string;
  usage: Usage;
  models?: ModelUsage[];
}

interface SessionView {
  id: string;
  status: string;
  error: string | null;
  usage: Usage;
  tasks: TaskView[];
}

interface ReportView {
  totals: Usage & { sessions: number; tasks: number };
  groups: Array<Usage & { key: string; tasks: number }>;
}

const FIGURES = ['inputTokens', 'outputTokens', 'cacheReadTokens', 'costUsd'] as const;
/** An answer streamed slowly: a run is stopped in the middle of it. */
const LONG_ANSWER = 'streamed and billed. '.repeat(400);

/** A figure summed over `usages`; costs to the millionth they are kept to (no float drift). */
function sumOf(usages: readonly Usage[], field: (typeof FIGURES)[number]): number {
  return toMillionths(usages.reduce((acc, usage) => acc + usage[field], 0));
}

function toMillionths(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}

/**
 * The real server on `store`, with providers `local` (model `m`, the default) and `backup` (model
 * `b`, the `documenter` role's), each a scripted LLM server answering with `handlers`.
 */
async function startServer(
  t: { after(fn: () => unknown): void },
  store: 'sqlite' | 'postgres',
  handlers: { local: LlmHandler; backup: LlmHandler },
): Promise<{ server: TestServer; local: ScriptedLlmServer; backup: ScriptedLlmServer }> {
  const local = await startLlmServer({ apiKey: 'k', handler: handlers.local });
  t.after(() => local.close());
  const backup = await startLlmServer({ apiKey: 'k', handler: handlers.backup });
  t.after(() => backup.close());
  const database = store === 'postgres' ? await createTestDatabase() : undefined;
  const server = await startTestServer({
    config: {
      store: database ? { url: database.url } : { synchronous: 'normal' },
      tasks: { leaseSeconds: 30, maxAttempts: 1 },
      ...twoModelConfig(local, backup, { documenter: { provider: 'backup' } }),
    },
  });
  // The server first: the database outlives it.
  t.after(async () => {
    await server.close();
    await database?.drop();
  });
  return { server, local, backup };
}

/** Waits until the task's run has recorded its spend so far on the task (engine/run-spend.ts). */
async function waitForSpendRecord(server: TestServer, sessionId: string, name: string): Promise<void> {
  await waitFor(async () => {
    const row = await server.app.database.db
      .selectFrom('tasks')
      .select('unsettled_usage')
      .where('session_id', '=', sessionId)
      .where('name', '=', name)
      .executeTakeFirst();
    return row?.unsettled_usage ? true : undefined;
  }, 30_000);
}

/**
 * Stops the engine, so that every stopped run has ended and charged what it spent (a graceful
 * stop waits for them), then reads the session and the tenant's usage by model.
 */
async function settledView(server: TestServer, sessionId: string, from: string) {
  await server.app.engine.stop({ graceMs: 10_000 });
  const session = await requestJson<SessionView>(`${server.url}/v1/sessions/${sessionId}`);
  assert.equal(session.status, 200, JSON.stringify(session.body));
  const to = new Date(Date.now() + 60_000).toISOString();
  const report = await requestJson<ReportView>(
    `${server.url}/v1/usage?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&groupBy=model`,
  );
  assert.equal(report.status, 200, JSON.stringify(report.body));
  return { session: session.body, report: report.body };
}

/** The task's spend is all under `key`'s model, and its models add up to its usage. */
function assertServedBy(task: TaskView | undefined, key: string): void {
  assert.ok(task);
  assert.ok(
    task.usage.outputTokens > 0 && task.usage.costUsd > 0,
    `${task.name} spent: ${JSON.stringify(task)}`,
  );
  assert.deepEqual(
    task.models?.map((usage) => `${usage.provider}/${usage.model}`),
    [key],
    `${task.name}: ${JSON.stringify(task)}`,
  );
  for (const field of FIGURES) {
    assert.equal(sumOf(task.models ?? [], field), toMillionths(task.usage[field]), field);
  }
}

/** Nothing unattributed: the model groups are `keys` and add up to the totals. */
function assertReportByModel(report: ReportView, keys: string[], session: SessionView): void {
  assert.deepEqual(
    report.groups.map((group) => group.key),
    keys,
    JSON.stringify(report),
  );
  for (const field of FIGURES) {
    assert.equal(sumOf(report.groups, field), report.totals[field], field);
    assert.equal(report.totals[field], toMillionths(session.usage[field]), field);
  }
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`usage by model of runs stopped before their finish (${store})`, { timeout: 120_000 }, () => {
    test('a run cancelled mid-stream counts under its model, the cancel’s charge and its own', async (t) => {
      const { server, local } = await startServer(t, store, {
        local: () => ({ text: LONG_ANSWER, chunkSize: 40, chunkDelayMs: 20 }),
        backup: () => ({ error: 500 }),
      });
      const from = new Date(Date.now() - 60_000).toISOString();
      const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: { objective: 'write', agents: [{ name: 'writer', role: 'engineer', task: 'write it all' }] },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const id = created.body.id;
      await waitForSpendRecord(server, id, 'writer');
      const cancelled = await requestJson<SessionView>(`${server.url}/v1/sessions/${id}/cancel`, {
        method: 'POST',
      });
      assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
      // The cancel charged the spend the run recorded, under the model it recorded it for.
      assertServedBy(cancelled.body.tasks[0], 'local/m');
      // The run, once stopped, charges what it streamed beyond that record.
      const { session, report } = await settledView(server, id, from);
      assert.equal(session.status, 'cancelled');
      assert.equal(local.openResponses(), 0, 'the stream was cut off');
      const [writer] = session.tasks;
      assertServedBy(writer, 'local/m');
      assert.ok(
        (writer?.usage.outputTokens ?? 0) < LONG_ANSWER.length / 4,
        'charged what it streamed, not the whole answer',
      );
      assertReportByModel(report, ['local/m'], session);
    });

    test('a budget crossed mid-stream: the stopped run and the one cancelled with it, each under its model', async (t) => {
      const { server } = await startServer(t, store, {
        // `slow` streams on `local` from the start; `fast` on `backup` a moment later, quickly, far
        // more than the budget: one of them is stopped for the budget, the other cancelled with the session.
        local: () => ({ text: LONG_ANSWER, chunkSize: 40, chunkDelayMs: 20 }),
        backup: () => ({
          text: 'quickly said. '.repeat(2000),
          chunkSize: 200,
          chunkDelayMs: 5,
          delayMs: 500,
        }),
      });
      const from = new Date(Date.now() - 60_000).toISOString();
      const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: {
          objective: 'write two things',
          strategy: 'parallel',
          budget: { maxTokens: 3000 },
          agents: [
            { name: 'slow', role: 'engineer', task: 'write it all' },
            { name: 'fast', role: 'documenter', task: 'document it all' },
          ],
        },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const id = created.body.id;
      const failed = await waitForSession<SessionView>(server.url, id);
      assert.equal(failed.status, 'failed');
      assert.match(failed.error ?? '', /BUDGET_EXCEEDED/);
      const { session, report } = await settledView(server, id, from);
      const slow = session.tasks.find((task) => task.name === 'slow');
      const fast = session.tasks.find((task) => task.name === 'fast');
      assert.deepEqual(
        [slow?.status, fast?.status].sort(),
        ['cancelled', 'failed'],
        'one stopped for the budget, the other cancelled with the session',
      );
      assertServedBy(slow, 'local/m');
      assertServedBy(fast, 'backup/b');
      assertReportByModel(report, ['backup/b', 'local/m'], session);
      // The task that ended failed says what it spent per model in its result event too.
      const events = await requestJson<{ items: Array<{ type: string; data: Record<string, unknown> }> }>(
        `${server.url}/v1/sessions/${id}/events?after=0&limit=1000`,
      );
      const stopped = session.tasks.find((task) => task.status === 'failed');
      const result = events.body.items.find(
        (event) => event.type === 'task.result' && event.data.taskId === stopped?.id,
      );
      assert.deepEqual(result?.data.models, stopped?.models);
    });
  });
}
