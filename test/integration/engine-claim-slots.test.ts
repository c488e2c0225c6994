// A worker never holds more claimed tasks than it has slots (`workers.concurrency`), and every task
// leased to it has a run in it. On PostgreSQL two engines share one database, and the planner is
// made to choose a plan that runs the claim's locking subquery once per row of a nested loop (one
// it is free to choose): a claim used to take every ready task then.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';
import { waitForLockWaiter } from '../fixtures/pause-query.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { waitFor } from '../fixtures/wait-for.ts';

/** Tasks named `a` answer at once; the others run until `release()` (or their abort). */
function holdingRuntime(released: Promise<void>): { runtime: AgentRuntime; live: Set<string> } {
  const live = new Set<string>();
  const runtime: AgentRuntime = {
    kind: 'llm',
    async run(task, ctx) {
      if (task.name === 'a') return { output: 'a' };
      live.add(task.taskId);
      try {
        await new Promise<void>((resolve, reject) => {
          void released.then(resolve);
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
        });
        return { output: task.name };
      } finally {
        live.delete(task.taskId);
      }
    },
  };
  return { runtime, live };
}

/** Five sessions a → b, c, d: fifteen tasks wait for the slots once the a's are done. */
const AGENTS = [
  { name: 'a', role: 'engineer', task: 'first' },
  ...['b', 'c', 'd'].map((name) => ({ name, role: 'engineer', task: name, depends_on: ['a'] })),
];

interface Worker {
  id: string;
  concurrency: number;
  harness: Harness;
  live: Set<string>;
}

async function checkSlots(workers: Worker[]): Promise<void> {
  const [first] = workers;
  const slots = workers.reduce((sum, worker) => sum + worker.concurrency, 0);
  const leasedTo = async () => {
    const rows = await first!.harness.handle.db
      .selectFrom('tasks')
      .select(['id', 'lease_owner'])
      .where('status', 'in', ['leased', 'running'])
      .execute();
    return new Map(
      workers.map((worker) => [
        worker.id,
        new Set(rows.filter((row) => row.lease_owner === worker.id).map((row) => row.id)),
      ]),
    );
  };
  const sessions = [];
  for (let i = 0; i < 5; i++) {
    const { session } = await first!.harness.engine.service.createSession(ACTOR, {
      objective: `slots ${i}`,
      agents: AGENTS,
    });
    sessions.push(session.id);
  }
  for (const worker of workers) worker.harness.engine.start();
  // Settled: the slots are taken (by held runs; the a's are done) and every run has started.
  await waitFor(
    async () => {
      const leased = await leasedTo();
      const taken = [...leased.values()].reduce((sum, ids) => sum + ids.size, 0);
      return taken >= slots && workers.every((worker) => leased.get(worker.id)!.size === worker.live.size);
    },
    20_000,
    'the slots taken and every run started',
  );
  const leased = await leasedTo();
  for (const worker of workers) {
    const mine = leased.get(worker.id)!;
    assert.ok(
      mine.size <= worker.concurrency,
      `${worker.id} holds ${mine.size} running tasks with ${worker.concurrency} slots`,
    );
    assert.deepEqual(
      [...mine].sort(),
      [...worker.live].sort(),
      `every task leased to ${worker.id} runs in it`,
    );
  }
}

async function finishAll(workers: Worker[], release: () => void): Promise<void> {
  release();
  const [first] = workers;
  const rows = await first!.harness.handle.db.selectFrom('sessions').select('id').execute();
  for (const { id } of rows) {
    const done = await first!.harness.waitForSession(id, 30_000);
    assert.equal(done.status, 'completed', done.error ?? '');
    assert.ok(
      done.tasks.every((task) => task.attempts === 1),
      'every task ran once',
    );
  }
}

describe('claimed tasks never outnumber the worker slots', { timeout: 90_000 }, () => {
  test('SQLite: the hand-off starts readied tasks on the freed slots only', async (t) => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { runtime, live } = holdingRuntime(released);
    const harness = await createHarness({ llm: runtime, concurrency: 3, start: false, workerId: 'solo' });
    t.after(() => harness.close());
    const workers = [{ id: 'solo', concurrency: 3, harness, live }];
    await checkSlots(workers);
    await finishAll(workers, release);
  });

  test('PostgreSQL: two engines, a plan that runs the claim subquery once per outer row', async (t) => {
    const database = await createTestDatabase();
    t.after(() => database.drop());
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      // For every connection opened from now on (the engines' pools): no hash, sort or
      // materialize step is left to run the claim's IN (subquery) once, only a nested loop.
      const name = new URL(database.url).pathname.slice(1);
      for (const setting of ['hashjoin', 'hashagg', 'material', 'mergejoin', 'sort']) {
        await admin.query(`alter database ${name} set enable_${setting} = off`);
      }
    } finally {
      await admin.end();
    }
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const workers: Worker[] = [];
    for (const [id, concurrency] of [
      ['left', 2],
      ['right', 3],
    ] as const) {
      const { runtime, live } = holdingRuntime(released);
      const harness = await createHarness({
        llm: runtime,
        concurrency,
        start: false,
        workerId: id,
        storeUrl: database.url,
      });
      t.after(() => harness.close());
      workers.push({ id, concurrency, harness, live });
    }
    await checkSlots(workers);
    await finishAll(workers, release);
  });

  test('PostgreSQL: a claim re-run after a deadlock gives back the slots of the attempt rolled back', async (t) => {
    const database = await createTestDatabase();
    t.after(() => database.drop());
    const instant: AgentRuntime = { kind: 'llm', run: async () => ({ output: 'done' }) };
    const harness = await createHarness({
      llm: instant,
      concurrency: 1,
      start: false,
      workerId: 'one-slot',
      storeUrl: database.url,
    });
    t.after(() => harness.close());
    const { session } = await harness.engine.service.createSession(ACTOR, {
      objective: 'deadlocked claim',
      agents: [{ name: 'a', role: 'engineer', task: 'first' }],
    });
    const { last_seq: lastSeq } = await harness.handle.db
      .selectFrom('sessions')
      .select('last_seq')
      .where('id', '=', session.id)
      .executeTakeFirstOrThrow();
    const { id: taskId } = await harness.handle.db
      .selectFrom('tasks')
      .select('id')
      .where('session_id', '=', session.id)
      .executeTakeFirstOrThrow();
    // Another transaction holds the event seq the claim's start event will take, so the claim
    // waits for it; it then waits for the task the claim holds: PostgreSQL aborts the claim, the
    // one waiting longer, with a deadlock, and the write queue runs it again.
    const other = new pg.Client({ connectionString: database.url });
    await other.connect();
    try {
      // The deadlock is found by whichever waiter's deadlock_timeout (1 s) runs out first; on a
      // loaded machine that could be this session. A longer timeout here leaves it to the claim.
      await other.query("set deadlock_timeout = '60s'");
      await other.query('begin');
      await other.query(
        `insert into events (session_id, seq, tenant_id, type, data, created_at) values ($1, $2, 'default', 'test.block', '{}', 0)`,
        [session.id, Number(lastSeq) + 1],
      );
      harness.engine.start();
      await waitForLockWaiter(harness.handle.db);
      await other.query('select id from tasks where id = $1 for update', [taskId]);
      await other.query('rollback');
    } finally {
      await other.end();
    }
    // The re-run found the task locked (or its one slot still reserved by the attempt rolled
    // back): only a claim after it can run the task, which needs the slot given back.
    const done = await harness.waitForSession(session.id, 20_000);
    assert.equal(done.status, 'completed', done.error ?? '');
    assert.equal(done.tasks[0]?.attempts, 1, 'the attempt rolled back is not counted');
  });
});
