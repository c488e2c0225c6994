// Who settles a spend record (engine/run-spend.ts) when the run that wrote it cannot: a cancel of a
// session whose replica died, a release at shutdown of a run that ignored its abort, and the lease
// reaper racing the run's last flush. Each charges the record once, under the models the record
// splits it into, on SQLite and PostgreSQL; the run charges what it spent beyond the record under
// the models that spent it. A flush locks the session before the task, as a cancel does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import type { ModelUsage, Usage } from '../../src/domain/types.ts';
import { expireTaskLease } from '../../src/engine/lease-expiry.ts';
import { recordUnsettledUsage } from '../../src/engine/run-spend.ts';
import { chargeUnappliedRun, releaseTask } from '../../src/engine/task-ops.ts';
import type { Claim } from '../../src/engine/task-outcome.ts';
import { recordRunsProgress } from '../../src/engine/task-output.ts';
import { findExpiredLeases } from '../../src/store/task-store.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';

const RECORD: Usage = { inputTokens: 1000, outputTokens: 500, cacheReadTokens: 0, costUsd: 1.5 };
const SPENT: Usage = { inputTokens: 1000, outputTokens: 800, cacheReadTokens: 0, costUsd: 2 };
// The record's split: the primary cut off, the fallback streaming; the fallback then streamed more.
const RECORD_MODELS: ModelUsage[] = [
  { provider: 'local', model: 'm', inputTokens: 1000, outputTokens: 300, cacheReadTokens: 0, costUsd: 1 },
  { provider: 'backup', model: 'b', inputTokens: 0, outputTokens: 200, cacheReadTokens: 0, costUsd: 0.5 },
];
const SPENT_MODELS: ModelUsage[] = [
  { provider: 'local', model: 'm', inputTokens: 1000, outputTokens: 300, cacheReadTokens: 0, costUsd: 1 },
  { provider: 'backup', model: 'b', inputTokens: 0, outputTokens: 500, cacheReadTokens: 0, costUsd: 1 },
];
/** The run that stopped: all it spent, and the record it last wrote, each split by model. */
const STOPPED_RUN = {
  usage: SPENT,
  spendOnRecord: RECORD,
  modelUsage: SPENT_MODELS,
  modelsOnRecord: RECORD_MODELS,
};

/** `[provider/model, outputTokens, costUsd]` of each model of the task, by name. */
function byModel(models: readonly ModelUsage[] | undefined): unknown[] {
  return (models ?? []).map((usage) => [
    `${usage.provider}/${usage.model}`,
    usage.outputTokens,
    usage.costUsd,
  ]);
}
const idle: AgentRuntime = { kind: 'llm', run: async () => ({ output: 'x' }) };

/** A session whose one task runs as attempt 1 of worker W, lease `expiresIn` ms from now. */
async function runningTask(
  t: { after(fn: () => unknown): void },
  store: 'sqlite' | 'postgres',
  expiresIn: number,
  maxAttempts = 3,
) {
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
    maxAttempts,
    ...(storeUrl ? { storeUrl } : {}),
  });
  t.after(() => h.close());
  const { session } = await h.engine.service.createSession(ACTOR, {
    objective: 'settle',
    agents: [{ name: 'a', role: 'engineer', task: 'w' }],
  });
  const db = h.handle.db;
  const task = await db
    .selectFrom('tasks')
    .selectAll()
    .where('session_id', '=', session.id)
    .executeTakeFirstOrThrow();
  await db
    .updateTable('tasks')
    .set({ status: 'running', lease_owner: 'W', attempts: 1, lease_expires_at: Date.now() + expiresIn })
    .where('id', '=', task.id)
    .execute();
  const claim: Claim = {
    taskId: task.id,
    sessionId: session.id,
    tenantId: task.tenant_id,
    name: task.name,
    owner: 'W',
    attempt: 1,
  };
  return { h, claim };
}

async function charged(h: Harness, claim: Claim) {
  const task = await h.handle.db
    .selectFrom('tasks')
    .select(['output_tokens', 'cost_usd', 'unsettled_usage'])
    .where('id', '=', claim.taskId)
    .executeTakeFirstOrThrow();
  const session = await h.engine.service.getSession(ACTOR, claim.sessionId);
  return {
    task: { ...task, output_tokens: Number(task.output_tokens), cost_usd: Number(task.cost_usd) },
    session,
    models: session.tasks.find((candidate) => candidate.id === claim.taskId)?.models,
  };
}

for (const store of ['sqlite', 'postgres'] as const) {
  test(`${store}: a cancel charges the record of a run whose replica died`, async (t) => {
    const { h, claim } = await runningTask(t, store, 60_000);
    assert.equal(await recordUnsettledUsage(h.handle.db, claim, RECORD, Date.now(), RECORD_MODELS), true);
    // W is gone; the session is cancelled before its lease runs out.
    await h.engine.service.cancelSession(ACTOR, claim.sessionId);
    const { task, session, models } = await charged(h, claim);
    assert.deepEqual(byModel(models), [
      ['backup/b', 200, 0.5],
      ['local/m', 300, 1],
    ]);
    assert.equal(task.output_tokens, RECORD.outputTokens);
    assert.equal(task.unsettled_usage, null);
    assert.equal(session.usage.outputTokens, RECORD.outputTokens);
    const finished = (await h.allEvents(claim.sessionId)).find((event) => event.type === 'session.finished');
    assert.equal((finished?.data.usage as Usage | undefined)?.outputTokens, RECORD.outputTokens);
    // Had W been alive, its run charges only what it spent beyond the record.
    await h.engine.queue.run((trx) => chargeUnappliedRun(trx, claim, STOPPED_RUN, Date.now()));
    const after = await charged(h, claim);
    assert.equal(after.task.output_tokens, SPENT.outputTokens);
    assert.deepEqual(byModel(after.models), [
      ['backup/b', 500, 1],
      ['local/m', 300, 1],
    ]);
  });

  test(`${store}: a run released at shutdown without charging has its record charged`, async (t) => {
    const { h, claim } = await runningTask(t, store, 60_000);
    assert.equal(await recordUnsettledUsage(h.handle.db, claim, RECORD, Date.now(), RECORD_MODELS), true);
    assert.equal(await h.engine.queue.run((trx) => releaseTask(trx, claim, Date.now())), true);
    const { task, session, models } = await charged(h, claim);
    assert.deepEqual(byModel(models), [
      ['backup/b', 200, 0.5],
      ['local/m', 300, 1],
    ]);
    assert.equal(task.output_tokens, RECORD.outputTokens);
    assert.equal(task.unsettled_usage, null, 'the next claim reuses attempt 1 without the old record');
    assert.equal(session.usage.outputTokens, RECORD.outputTokens);
  });

  test(`${store}: a flush that commits after the reaper's scan is charged by the reaper, once`, async (t) => {
    const { h, claim } = await runningTask(t, store, -60_000);
    const db = h.handle.db;
    const expired = await findExpiredLeases(db, Date.now(), 10);
    const row = expired.find((candidate) => candidate.id === claim.taskId);
    assert.ok(row);
    // The stalled run's flush commits between the reaper's scan and its update.
    assert.equal(await recordUnsettledUsage(db, claim, RECORD, Date.now(), RECORD_MODELS), true);
    const effects = await h.engine.queue.run((trx) => expireTaskLease(trx, row, Date.now()));
    assert.equal(effects.applied, true);
    assert.deepEqual(byModel((await charged(h, claim)).models), [
      ['backup/b', 200, 0.5],
      ['local/m', 300, 1],
    ]);
    // The run ends later: it charges what it spent beyond the record the reaper settled.
    await h.engine.queue.run((trx) => chargeUnappliedRun(trx, claim, STOPPED_RUN, Date.now()));
    const { task, session, models } = await charged(h, claim);
    assert.equal(task.output_tokens, SPENT.outputTokens, 'charged once in all');
    assert.equal(session.usage.outputTokens, SPENT.outputTokens);
    assert.deepEqual(byModel(models), [
      ['backup/b', 500, 1],
      ['local/m', 300, 1],
    ]);
  });

  test(`${store}: a lease lost on the last attempt fails the task; its result shows the record's models`, async (t) => {
    const { h, claim } = await runningTask(t, store, -60_000, 1);
    const db = h.handle.db;
    assert.equal(await recordUnsettledUsage(db, claim, RECORD, Date.now(), RECORD_MODELS), true);
    const [row] = (await findExpiredLeases(db, Date.now(), 10)).filter((found) => found.id === claim.taskId);
    assert.ok(row);
    const effects = await h.engine.queue.run((trx) => expireTaskLease(trx, row, Date.now()));
    assert.equal(effects.retried, false);
    const result = (await h.allEvents(claim.sessionId)).find((event) => event.type === 'task.result');
    assert.equal(result?.data.status, 'failed');
    assert.deepEqual(result?.data.usage, RECORD);
    assert.deepEqual(result?.data.models, (await charged(h, claim)).models);
    assert.deepEqual(byModel(result?.data.models as ModelUsage[] | undefined), [
      ['backup/b', 200, 0.5],
      ['local/m', 300, 1],
    ]);
  });

  test(`${store}: spend beyond a record that had no split is left without a model, never over-attributed`, async (t) => {
    const { h, claim } = await runningTask(t, store, 60_000);
    // Recorded without its models (e.g. by a replica of an earlier version), settled by a cancel.
    assert.equal(await recordUnsettledUsage(h.handle.db, claim, RECORD, Date.now()), true);
    await h.engine.service.cancelSession(ACTOR, claim.sessionId);
    await h.engine.queue.run((trx) =>
      chargeUnappliedRun(
        trx,
        claim,
        { usage: SPENT, spendOnRecord: RECORD, modelUsage: SPENT_MODELS },
        Date.now(),
      ),
    );
    const { task, models } = await charged(h, claim);
    assert.equal(task.output_tokens, SPENT.outputTokens);
    assert.equal(models, undefined, 'which model spent the rest is unknown: unattributed');
  });
}

test('postgres: a flush that records spend locks the session before the task, as a cancel does', async (t) => {
  const { h, claim } = await runningTask(t, 'postgres', 60_000);
  const order: string[] = [];
  await h.handle.db
    .withPlugin({
      transformQuery(args) {
        const node = args.node as { kind: string; sqlFragments?: readonly string[]; table?: unknown };
        if (node.kind === 'RawNode' && node.sqlFragments?.join('?').includes('for no key update'))
          order.push('session lock');
        if (node.kind === 'UpdateQueryNode' && JSON.stringify(node.table).includes('"tasks"'))
          order.push('task update');
        return args.node;
      },
      transformResult: async (args) => args.result,
    })
    .transaction()
    .execute((trx) =>
      recordRunsProgress(trx, [{ claim, lines: [{ stream: 'text', line: 'x' }], spend: RECORD }], Date.now()),
    );
  assert.deepEqual(order.slice(0, 2), ['session lock', 'task update']);
});
