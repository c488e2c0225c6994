// The session locks of a batch of output flushes (engine/progress-recorder.ts) whose batch failed
// and whose flushes are then written one by one: every transaction that locks several sessions
// locks them in id order, so two replicas never wait for each other in a cycle. Written one by one
// in the batch's order, the flushes locked a session of a higher id, then one of a lower id: a
// replica's transaction locking both in id order (a reaper pass, a finish of several sessions)
// deadlocked with it (40P01 after deadlock_timeout, one of the two rolled back and the operation run
// again).
// Needs --test-global-setup=test/fixtures/postgres-global-setup.ts.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { createProgressRecorder } from '../../src/engine/progress-recorder.ts';
import type { Claim } from '../../src/engine/task-outcome.ts';
import { ACTOR, createHarness } from '../fixtures/engine-harness.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import { waitFor } from '../fixtures/wait-for.ts';

const databases: TestDatabase[] = [];
after(async () => {
  for (const database of databases) await database.drop();
});

/** Advisory lock key the test holds to stop the flush of the higher session half-way. */
const GATE = 7_301_977;

/** Whether a backend of the database waits for a lock of `type` ('advisory', 'tuple', 'transactionid' …). */
async function waitsForLock(client: pg.Client, pid: number | null, types: string[]): Promise<boolean> {
  const { rows } = await client.query<{ n: string }>(
    `select count(*) as n from pg_stat_activity
     where datname = current_database() and wait_event_type = 'Lock' and wait_event = any($1::text[])
       and ($2::int is null or pid = $2::int)`,
    [types, pid],
  );
  return Number(rows[0]!.n) > 0;
}

test('the flushes of a failed batch, written one by one, lock their sessions in id order: no deadlock with a replica locking them in id order', {
  timeout: 60_000,
}, async () => {
  const database = await createTestDatabase();
  databases.push(database);
  // Not started: the test writes the flushes itself, as claimed runs of worker w.
  const llm: AgentRuntime = { kind: 'fake-llm', run: async () => ({ output: 'unused' }) };
  const h = await createHarness({ storeUrl: database.url, start: false, llm });
  const gate = new pg.Client({ connectionString: database.url });
  const other = new pg.Client({ connectionString: database.url });
  await gate.connect();
  await other.connect();
  try {
    const sessions: string[] = [];
    for (const name of ['a', 'b']) {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: `flushes ${name}`,
        agents: [{ name, role: 'engineer', task: 'stream' }],
      });
      sessions.push(session.id);
    }
    const [low, high] = [...sessions].sort() as [string, string];
    // Each session's task runs under worker w, attempt 1 (as claimed).
    await sql`update tasks set status = 'running', lease_owner = 'w', attempts = 1`.execute(h.handle.db);
    const tasks = await h.handle.db.selectFrom('tasks').select(['id', 'session_id', 'name']).execute();
    const claimOf = (sessionId: string): Claim => {
      const task = tasks.find((row) => row.session_id === sessionId)!;
      return {
        taskId: task.id,
        sessionId,
        tenantId: ACTOR.tenantId,
        name: task.name,
        owner: 'w',
        attempt: 1,
      };
    };
    // The lower session's lines are refused (the batch fails, then its flush alone); the higher
    // session's second insert (its flush alone, after the batch was rolled back) waits for GATE.
    await sql
      .raw(
        `create sequence high_inserts;
         create function gate_output() returns trigger language plpgsql as $$ begin
           if new.type = 'task.output' and new.session_id = '${low}' then raise exception 'refused by the test'; end if;
           if new.type = 'task.output' and new.session_id = '${high}' and nextval('high_inserts') = 2 then
             perform pg_advisory_xact_lock(${GATE});
           end if;
           return new;
         end $$;
         create trigger gate_output before insert on events for each row execute function gate_output()`,
      )
      .execute(h.handle.db);
    await gate.query('begin');
    await gate.query('select pg_advisory_xact_lock($1)', [GATE]);

    const record = createProgressRecorder(h.engine.queue, Date.now);
    // The higher session's flush first in the batch.
    const flushes = [
      record({ claim: claimOf(high), lines: [{ stream: 'text', line: 'high' }] }),
      record({ claim: claimOf(low), lines: [{ stream: 'text', line: 'low' }] }),
    ].map((flush) =>
      flush.then(
        (stored) => ({ ok: true as const, stored }),
        (error: unknown) => ({ ok: false as const, error }),
      ),
    );
    // The flush of the higher session alone is under way and waits for the gate.
    await waitFor(() => waitsForLock(gate, null, ['advisory']), 10_000, 'the flush waiting for the gate');

    // Another replica's transaction locking both sessions in id order, as every such one does.
    await other.query('begin');
    const otherPid = (await other.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    const otherLocks = other
      .query('select id from sessions where id = any($1::text[]) order by id for no key update', [
        [low, high],
      ])
      .then(
        () => null,
        (error: unknown) => error as { code?: string },
      );
    await waitFor(
      () => waitsForLock(gate, otherPid, ['tuple', 'transactionid']),
      10_000,
      'the other transaction waiting for a session lock',
    );
    await gate.query('commit');

    const otherError = await otherLocks;
    assert.equal(
      otherError,
      null,
      `the other transaction failed: ${String((otherError as Error | null)?.message)}`,
    );
    await other.query('commit');
    const [highOutcome, lowOutcome] = await Promise.all(flushes);
    assert.deepEqual(highOutcome, { ok: true, stored: true });
    assert.equal(lowOutcome!.ok, false, 'the refused flush fails');
    // The batch once, then each flush alone once: the operation was not run again after a deadlock.
    const { rows } = await gate.query<{ last_value: string }>('select last_value from high_inserts');
    assert.equal(Number(rows[0]!.last_value), 2, 'inserts of the higher session');
    const lines = await h.handle.db
      .selectFrom('events')
      .select(['session_id', 'data'])
      .where('type', '=', 'task.output')
      .execute();
    assert.deepEqual(
      lines.map((row) => row.session_id),
      [high],
      'only the higher session stored its line',
    );
  } finally {
    await gate.end().catch(() => undefined);
    await other.end().catch(() => undefined);
    await h.close();
  }
});
