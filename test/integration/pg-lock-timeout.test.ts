// A role with a lock_timeout (ALTER ROLE … SET lock_timeout, as a managed service or a DBA sets
// it): a statement that waits for a lock past it fails with lock_not_available (55P03). A request
// that meets it answers 503 STORE_UNAVAILABLE naming it, with Retry-After, not 500 INTERNAL; an
// engine finish that meets it is tried again until the lock comes free, so the run's result and
// usage are kept and the task does not run a second time.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { ACTOR, createHarness } from '../fixtures/engine-harness.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import { requestJson, startTestServer } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

/** A migrated test database whose role (in it only) sets a 50 ms lock_timeout. */
async function databaseWithLockTimeout(t: TestContext): Promise<TestDatabase> {
  const database = await createTestDatabase();
  t.after(() => database.drop());
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  try {
    const name = new URL(database.url).pathname.slice(1);
    // The role's setting in this database only (dropped with it): new connections take it.
    await admin.query(`alter role current_user in database "${name}" set lock_timeout = '50ms'`);
  } finally {
    await admin.end();
  }
  return database;
}

/** Another client holding the session's row lock (FOR UPDATE) until `release()`. */
async function holdSessionRow(
  t: TestContext,
  url: string,
  sessionId: string,
): Promise<{ client: pg.Client; release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  // Dropping the database ends this session.
  client.on('error', () => undefined);
  await client.connect();
  t.after(() => client.end().catch(() => undefined));
  await client.query('begin');
  // Its own transaction waits for nothing: the role's lock_timeout is lifted for it.
  await client.query(`set local lock_timeout = 0`);
  await client.query('select id from sessions where id = $1 for update', [sessionId]);
  return {
    client,
    async release() {
      await client.query('rollback');
    },
  };
}

/** Whether a backend of this database (other than `client`'s) waits for a lock now. */
async function someoneWaitsForLock(client: pg.Client): Promise<boolean> {
  const { rowCount } = await client.query(
    `select 1 from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where not l.granted and a.datname = current_database() and a.pid <> pg_backend_pid()`,
  );
  return (rowCount ?? 0) > 0;
}

test('a request that waits for a lock past the role lock_timeout answers 503 STORE_UNAVAILABLE with Retry-After', async (t) => {
  const database = await databaseWithLockTimeout(t);
  const server = await startTestServer({ config: { store: { url: database.url } } });
  t.after(() => server.close());
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'waits for a lock', agents: [{ name: 'a', role: 'qa', task: 't', runner: 'sleep' }] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const sessionId = created.body.id;

  const holder = await holdSessionRow(t, database.url, sessionId);
  const refused = await requestJson<{ code: string; detail: string }>(
    `${server.url}/v1/sessions/${sessionId}/cancel`,
    { method: 'POST' },
  );
  await holder.release();
  assert.equal(refused.status, 503, JSON.stringify(refused.body));
  assert.equal(refused.body.code, 'STORE_UNAVAILABLE');
  assert.match(refused.body.detail, /lock_timeout/);
  assert.equal(refused.headers.get('retry-after'), '1');

  // Once the lock is free, the same request goes through: nothing was half-stored.
  const cancelled = await requestJson<{ status: string }>(`${server.url}/v1/sessions/${sessionId}/cancel`, {
    method: 'POST',
  });
  assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
  assert.equal(cancelled.body.status, 'cancelled');
});

test("an engine finish that waits for a lock past the role lock_timeout is tried again: the run's result and usage are kept, one run", async (t) => {
  const database = await databaseWithLockTimeout(t);
  let runs = 0;
  let answer: (() => void) | undefined;
  const gated: AgentRuntime = {
    kind: 'fake',
    async run(task) {
      // The first run answers while another transaction holds its session's row; a second run
      // (the finish dropped, the task run again after its lease) answers at once.
      if (++runs === 1) {
        await new Promise<void>((resolve) => {
          answer = resolve;
        });
      }
      return { output: `done ${task.name} attempt ${task.attempt}`, usage: { inputTokens: 7 } };
    },
  };
  // A dropped finish shows within the lease: the reaper hands the task to a second attempt.
  const h = await createHarness({ storeUrl: database.url, llm: gated, leaseSeconds: 3, pollIntervalMs: 50 });
  t.after(() => h.close());
  const { session } = await h.engine.service.createSession(ACTOR, {
    objective: 'finish behind a lock',
    agents: [{ name: 'only', role: 'engineer', task: 't' }],
  });
  await waitFor(() => answer !== undefined, 30_000, 'the task runs');

  const holder = await holdSessionRow(t, database.url, session.id);
  answer!();
  // The finish waits for the session's row, and fails after 50 ms (55P03) ...
  await waitFor(() => someoneWaitsForLock(holder.client), 30_000, 'the finish waiting for the session row');
  // ... several times over before the row comes free.
  await delay(500);
  await holder.release();

  const done = await h.waitForSession(session.id, 60_000);
  assert.equal(done.status, 'completed');
  assert.equal(runs, 1, 'the task ran once');
  assert.equal(done.tasks[0]!.attempts, 1);
  assert.equal(done.tasks[0]!.result, 'done only attempt 1');
  assert.equal(done.usage.inputTokens, 7, 'charged once');
  const results = (await h.allEvents(session.id)).filter((event) => event.type === 'task.result');
  assert.equal(results.length, 1);
});
