// Claims are fair between tenants (docs/adr/0013-fair-claims-between-tenants.md): a tenant whose
// ready tasks outnumber the worker slots does not keep another tenant's task waiting behind all of
// them. The freed slot goes to the tenant with the fewest tasks claimed now, on every replica; with
// one tenant ready a claim still takes every free slot, oldest ready first. SQLite (where the finish
// of a chain's step would otherwise hand the next step to its own slot) and PostgreSQL, one engine
// and two on one database.
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import pg from 'pg';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { isTerminalSessionStatus } from '../../src/domain/session-state.ts';
import type { Actor } from '../../src/engine/session-service.ts';
import { claimReadyTasks } from '../../src/store/task-store.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { waitFor } from '../fixtures/wait-for.ts';

const QUIET: Actor = { tenantId: 'quiet', principalId: 'test' };
const OTHER: Actor = { tenantId: 'other', principalId: 'test' };

/** Runs that go on until released one by one (or all at once with `releaseAll`), in start order. */
function heldRuntime() {
  const started: Array<{ taskId: string; tenantId: string; name: string }> = [];
  const held = new Map<string, () => void>();
  let holding = true;
  const runtime: AgentRuntime = {
    kind: 'llm',
    async run(task, ctx) {
      started.push({ taskId: task.taskId, tenantId: task.tenantId, name: task.name });
      if (holding) {
        await new Promise<void>((resolve, reject) => {
          held.set(task.taskId, resolve);
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
        });
      }
      return { output: task.name };
    },
  };
  return {
    runtime,
    started,
    release(taskId: string) {
      const resolve = held.get(taskId);
      assert.ok(resolve, `task ${taskId} is not held`);
      held.delete(taskId);
      resolve();
    },
    releaseAll() {
      holding = false;
      for (const resolve of held.values()) resolve();
      held.clear();
    },
  };
}

async function addTenants(harness: Harness): Promise<void> {
  for (const id of [QUIET.tenantId, OTHER.tenantId]) {
    await harness.handle.db
      .insertInto('tenants')
      .values({ id, name: id, created_at: 0 } as never)
      .execute();
  }
}

/** Ready tasks of a tenant now. */
async function readyOf(harness: Harness, tenantId: string): Promise<number> {
  const row = await harness.handle.db
    .selectFrom('tasks')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('status', '=', 'ready')
    .where('tenant_id', '=', tenantId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

type Shape = 'parallel tasks' | 'chains';

/**
 * The default tenant fills every slot and has more ready tasks besides (independent tasks, or the
 * first steps of chains whose next steps a finish would hand to its own slot); the quiet tenant
 * then submits one task. When one slot frees, that task is the next to start.
 */
async function checkQuietTenantNext(
  engines: Harness[],
  held: ReturnType<typeof heldRuntime>,
  shape: Shape,
  slots: number,
): Promise<void> {
  const [first] = engines as [Harness];
  await addTenants(first);
  const sessions: string[] = [];
  for (let i = 0; i < slots + 2; i++) {
    const agents =
      shape === 'chains'
        ? [
            { name: 'first', role: 'engineer', task: 'step 1' },
            { name: 'second', role: 'engineer', task: 'step 2', depends_on: ['first'] },
          ]
        : [{ name: 'only', role: 'engineer', task: 'work' }];
    const { session } = await first.engine.service.createSession(ACTOR, { objective: `busy ${i}`, agents });
    sessions.push(session.id);
  }
  for (const engine of engines) engine.engine.start();
  await waitFor(() => held.started.length === slots, 20_000, 'every slot running a task of the busy tenant');
  const { session: quiet } = await first.engine.service.createSession(QUIET, {
    objective: 'one task',
    agents: [{ name: 'quiet', role: 'engineer', task: 'work' }],
  });
  assert.equal(await readyOf(first, ACTOR.tenantId), 2, 'the busy tenant has two tasks waiting');
  held.release(held.started[0]!.taskId);
  await waitFor(() => held.started.length > slots, 20_000, 'a task started on the freed slot');
  assert.deepEqual(
    { tenant: held.started[slots]!.tenantId, name: held.started[slots]!.name },
    { tenant: QUIET.tenantId, name: 'quiet' },
    `the quiet tenant's task runs next, before the ${shape} the busy tenant has waiting`,
  );
  assert.equal(await readyOf(first, ACTOR.tenantId), shape === 'chains' ? 3 : 2, 'still waiting');
  held.releaseAll();
  for (const [actor, id] of [...sessions.map((id) => [ACTOR, id] as const), [QUIET, quiet.id] as const]) {
    const done = await waitFor(
      async () => {
        const detail = await first.engine.service.getSession(actor, id);
        return isTerminalSessionStatus(detail.status) && detail;
      },
      30_000,
      `session ${id} finished`,
    );
    assert.equal(done.status, 'completed', done.error ?? '');
  }
}

describe('fair claims between tenants', { timeout: 180_000 }, () => {
  for (const shape of ['parallel tasks', 'chains'] as const) {
    test(`SQLite: a quiet tenant's task takes the next free slot (busy tenant's ${shape})`, async (t) => {
      const held = heldRuntime();
      const harness = await createHarness({ llm: held.runtime, concurrency: 2, start: false });
      t.after(() => harness.close());
      await checkQuietTenantNext([harness], held, shape, 2);
    });

    test(`PostgreSQL, two engines: a quiet tenant's task takes the next free slot (busy tenant's ${shape})`, async (t) => {
      const database = await createTestDatabase();
      t.after(() => database.drop());
      const held = heldRuntime();
      const engines: Harness[] = [];
      for (const workerId of ['left', 'right']) {
        const harness = await createHarness({
          llm: held.runtime,
          concurrency: 1,
          start: false,
          workerId,
          storeUrl: database.url,
        });
        t.after(() => harness.close());
        engines.push(harness);
      }
      await checkQuietTenantNext(engines, held, shape, 2);
    });
  }

  for (const store of ['SQLite', 'PostgreSQL', 'PostgreSQL with nested-loop plans only'] as const) {
    test(`${store}: one claim shares its slots by the tasks each tenant has claimed`, async (t) => {
      const { harness, claim } = await claimBench(t, store);
      const { db } = harness.handle;
      // Nothing claimed yet: one task of each tenant in turn, the oldest tenant's first.
      assert.deepEqual(await claim(4), { default: 2, quiet: 1, other: 1 });
      // Claimed now: default 2, quiet 1, other 1 (and nothing more ready): quiet catches up first.
      assert.deepEqual(await claim(3), { default: 1, quiet: 2 });
      // Within a tenant oldest first.
      const quietClaimed = await db
        .selectFrom('tasks')
        .select('name')
        .where('tenant_id', '=', 'quiet')
        .where('lease_owner', 'is not', null)
        .orderBy('name')
        .execute();
      assert.deepEqual(
        quietClaimed.map((row) => row.name),
        ['t0', 't1', 't2'],
      );
      // Work-conserving: a claim takes every ready task it has slots for…
      assert.deepEqual(await claim(10), { default: 3, quiet: 3 });
      assert.deepEqual(await claim(3), {});
      // …also when one tenant alone has ready tasks.
      await submit(harness, OTHER, 3);
      assert.deepEqual(await claim(2), { other: 2 });
      assert.deepEqual(await claim(2), { other: 1 });
    });
  }

  for (const store of ['SQLite', 'PostgreSQL', 'PostgreSQL with nested-loop plans only'] as const) {
    test(`${store}: with more tenants ready than the window, a claim ranks the next window of them`, async (t) => {
      const { harness } = await claimHarness(t, store);
      const { tenants, claim, run } = await tenTenants(harness);
      // A claim of 4 with a window of 4: the first task of each of 4 consecutive tenants, not the
      // 4 oldest tasks (w0, w5, w1, w6).
      const first = await claim(4);
      const start = Array.from(tenants.keys()).find((s) => run(s, 4).join() === first.join());
      assert.notEqual(
        start,
        undefined,
        `consecutive tenants, got ${first.map((i) => tenants[i]).join(', ')}`,
      );
      // The next claims go on from where it stopped: every tenant within ceil(10 / 4) claims (the
      // third window wraps around to two tenants that already have a task running, ranked after
      // the two that have none but still given the slots left).
      assert.deepEqual(await claim(4), run(start! + 4, 4));
      assert.deepEqual(await claim(4), run(start! + 8, 4));
      // The window is never narrower than the claim: 8 slots, 8 tenants' tasks left, all taken.
      assert.deepEqual(await claim(8), run(start! + 2, 8));
      assert.deepEqual(await claim(8), []);
    });
  }

  for (const store of ['PostgreSQL', 'PostgreSQL with nested-loop plans only'] as const) {
    test(`${store}: a window's tenant that another replica holds locked leaves its slot to the next tenant`, async (t) => {
      const { harness, database } = await claimHarness(t, store);
      const { tenants, claim, run } = await tenTenants(harness);
      const first = await claim(4);
      const start = Array.from(tenants.keys()).find((s) => run(s, 4).join() === first.join())!;
      // The next window is start + 4 … start + 7; another replica holds the last one's tasks locked.
      const locked = tenants[(start + 7) % tenants.length]!;
      const replica = new pg.Client({ connectionString: database!.url });
      await replica.connect();
      try {
        await replica.query('begin');
        await replica.query('select id from tasks where tenant_id = $1 for no key update', [locked]);
        // Its slot goes to the tenant after the window, which has nothing claimed, not to a second
        // task of a tenant in it.
        assert.deepEqual(
          await claim(4),
          [...run(start + 4, 3), (start + 8) % tenants.length].sort((a, b) => a - b),
        );
        await replica.query('rollback');
      } finally {
        await replica.end();
      }
    });
  }

  for (const store of ['PostgreSQL', 'PostgreSQL with nested-loop plans only'] as const) {
    test(`${store}: a tenant's share that another replica holds locked goes to the other tenants`, async (t) => {
      const { harness, database, claim } = await claimBench(t, store);
      await submit(harness, OTHER, 2); // other: three ready, these two the newest
      // Another replica's claim, not committed yet, holds every ready task of the default tenant
      // (the oldest tenant's).
      const replica = new pg.Client({ connectionString: database!.url });
      await replica.connect();
      try {
        await replica.query('begin');
        const locked = await replica.query(
          "select id from tasks where tenant_id = 'default' and status = 'ready' for no key update",
        );
        assert.equal(locked.rowCount, 6);
        // Shares with nothing claimed: default 2, quiet 1, other 1. Default's two find all its ready
        // tasks locked; those slots go to the others, shared by what each has claimed (one each, not
        // the older quiet's two).
        assert.deepEqual(await claim(4), { quiet: 2, other: 2 });
        assert.deepEqual(await claim(4), { quiet: 3, other: 1 });
        assert.deepEqual(await claim(4), { quiet: 1 });
        assert.deepEqual(await claim(4), {});
        // The other replica lets go: default, with nothing claimed, gets the slots.
        await replica.query('rollback');
      } finally {
        await replica.end();
      }
      assert.deepEqual(await claim(2), { default: 2 });
      const claimed = await harness.handle.db
        .selectFrom('tasks')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('status', '=', 'leased')
        .executeTakeFirstOrThrow();
      assert.equal(Number(claimed.n), 11);
    });
  }
});

/** Submits one session of `tasks` independent tasks (t0, t1, …) for `actor`. */
async function submit(harness: Harness, actor: Actor, tasks: number): Promise<void> {
  const agents = Array.from({ length: tasks }, (_, i) => ({ name: `t${i}`, role: 'engineer', task: 'x' }));
  await harness.engine.service.createSession(actor, { objective: actor.tenantId, agents });
}

/**
 * An engine that claims nothing itself (no slots) on `store`, with ready tasks: six of the default
 * tenant (the oldest), then six of quiet, then one of other, each tenant's in plan order (t0 first);
 * `claim(limit)` claims as the next owner `round-N` and returns how many each tenant got.
 */
async function claimBench(
  t: TestContext,
  store: 'SQLite' | 'PostgreSQL' | 'PostgreSQL with nested-loop plans only',
) {
  const { harness, database } = await claimHarness(t, store);
  await addTenants(harness);
  const { db, dialect } = harness.handle;
  await submit(harness, ACTOR, 6);
  await submit(harness, QUIET, 6);
  await submit(harness, OTHER, 1);
  // Ready in this order, one task after the other.
  for (const [offset, tenant] of ['default', 'quiet', 'other'].entries()) {
    for (let i = 0; i < 6; i++) {
      await db
        .updateTable('tasks')
        .set({ ready_at: 1_000 * (offset + 1) + i })
        .where('tenant_id', '=', tenant)
        .where('name', '=', `t${i}`)
        .execute();
    }
  }
  let round = 0;
  const claim = async (limit: number) => {
    const owner = `round-${++round}`;
    const rows = await claimReadyTasks(db, dialect, { owner, limit, leaseMs: 60_000, now: Date.now() });
    assert.ok(rows.every((row) => row.lease_owner === owner));
    const got: Record<string, number> = {};
    for (const row of rows) got[row.tenant_id] = (got[row.tenant_id] ?? 0) + 1;
    return got;
  };
  return { harness, database, claim };
}

/** An engine that claims nothing itself (no slots) on `store`, and no tasks yet. */
async function claimHarness(
  t: TestContext,
  store: 'SQLite' | 'PostgreSQL' | 'PostgreSQL with nested-loop plans only',
) {
  const database = store === 'SQLite' ? undefined : await createTestDatabase();
  if (database) t.after(() => database.drop());
  if (database && store !== 'PostgreSQL') {
    // Plans PostgreSQL is free to choose, forced for every connection of the engine: nested
    // loops only, which would run an unmaterialized locking subquery once per outer row.
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      const name = new URL(database.url).pathname.slice(1);
      for (const setting of ['hashjoin', 'hashagg', 'material', 'mergejoin', 'sort']) {
        await admin.query(`alter database ${name} set enable_${setting} = off`);
      }
    } finally {
      await admin.end();
    }
  }
  const harness = await createHarness({
    llm: heldRuntime().runtime,
    concurrency: 0,
    start: false,
    ...(database ? { storeUrl: database.url } : {}),
  });
  t.after(() => harness.close());
  return { harness, database };
}

/**
 * Ten tenants w0…w9 with two ready tasks each, on an engine of claimHarness; `claim(limit)` claims
 * with a window of 4 tenants and returns the numbers of the tenants of the tasks it took.
 */
async function tenTenants(harness: Harness) {
  const { db, dialect } = harness.handle;
  // Ten tenants w0…w9, two ready tasks each; their first tasks ready in an order that scatters
  // them, so the claim of the oldest across all tenants would take tenants far apart.
  const tenants = Array.from({ length: 10 }, (_, i) => `w${i}`);
  const order = [0, 5, 1, 6, 2, 7, 3, 8, 4, 9];
  for (const [i, id] of tenants.entries()) {
    await db
      .insertInto('tenants')
      .values({ id, name: id, created_at: 0 } as never)
      .execute();
    await submit(harness, { tenantId: id, principalId: 'test' }, 2);
    for (const [task, readyAt] of [
      ['t0', 1_000 + order.indexOf(i)],
      ['t1', 2_000 + i],
    ] as const) {
      await db
        .updateTable('tasks')
        .set({ ready_at: readyAt })
        .where('tenant_id', '=', id)
        .where('name', '=', task)
        .execute();
    }
  }
  let round = 0;
  const claim = async (limit: number) => {
    const rows = await claimReadyTasks(db, dialect, {
      owner: `window-${++round}`,
      limit,
      leaseMs: 60_000,
      now: Date.now(),
      tenantWindow: 4,
    });
    return rows.map((row) => tenants.indexOf(row.tenant_id)).sort((a, b) => a - b);
  };
  /** The tenants `start`, `start + 1`, … in tenant id order, wrapping around. */
  const run = (start: number, length: number) =>
    Array.from({ length }, (_, i) => (start + i) % tenants.length).sort((a, b) => a - b);
  return { tenants, claim, run };
}
