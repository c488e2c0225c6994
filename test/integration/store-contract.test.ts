// Store contract: the SAME behaviours run against every store implementation (SQLite file and
// PostgreSQL), through the engine and repositories the application uses. A behaviour that only
// holds on one backend fails here.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import type { SessionEvent } from '../../src/domain/types.ts';
import { expireTaskLease } from '../../src/engine/lease-expiry.ts';
import { finishTask } from '../../src/engine/task-ops.ts';
import { createAuditLog } from '../../src/security/audit/audit-log.ts';
import type { AuditEventInput } from '../../src/security/audit/audit-record.ts';
import { verifyAuditEntries } from '../../src/security/audit/verify.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { claimReadyTasks, findExpiredLeases } from '../../src/store/task-store.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';

const instant: AgentRuntime = {
  kind: 'fake',
  run: async (task) => ({ output: `done ${task.name} attempt ${task.attempt}`, usage: { inputTokens: 1 } }),
};
const zero = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 };

function assertContiguous(events: SessionEvent[]): void {
  assert.deepEqual(
    events.map((event) => event.seq),
    events.map((_, index) => index + 1),
  );
}

function auditEvent(i: number): AuditEventInput {
  return {
    action: `contract.${i}`,
    actor: { type: 'system', id: null, tenant: null, ip: null, user_agent: null, auth_method: null },
    outcome: 'success',
  };
}

interface Backend {
  name: string;
  /** Options that point a harness at a fresh store of this kind. */
  open(): Promise<{ storeUrl?: string; dispose(): Promise<void> }>;
}

const backends: Backend[] = [
  { name: 'sqlite', open: async () => ({ dispose: async () => undefined }) },
  {
    name: 'postgres',
    async open() {
      const database: TestDatabase = await createTestDatabase();
      return { storeUrl: database.url, dispose: () => database.drop() };
    },
  },
];

for (const backend of backends) {
  describe(`store contract: ${backend.name}`, { timeout: 120_000 }, () => {
    let h: Harness;
    let dispose: () => Promise<void>;
    before(async () => {
      const store = await backend.open();
      dispose = store.dispose;
      h = await createHarness({
        llm: instant,
        start: false,
        leaseSeconds: 5,
        ...(store.storeUrl ? { storeUrl: store.storeUrl } : {}),
      });
    });
    after(async () => {
      await h?.close();
      await dispose?.();
    });

    test('a session with a task graph runs to completion, each task once, events contiguous', async () => {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'contract run',
        agents: [
          { name: 'a', role: 'engineer', task: 't' },
          { name: 'b', role: 'tester', task: 't', depends_on: ['a'] },
          { name: 'c', role: 'reviewer', task: 't', depends_on: ['a'] },
          { name: 'd', role: 'engineer', task: 't', depends_on: ['b', 'c'] },
        ],
      });
      assert.equal(session.tasks.length, 4);
      h.engine.start();
      const done = await h.waitForSession(session.id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.ok(done.tasks.every((task) => task.status === 'succeeded' && task.attempts === 1));
      const events = await h.allEvents(session.id);
      assertContiguous(events);
      assert.equal(events.filter((event) => event.type === 'task.result').length, 4);
      assert.equal(events.at(-1)!.type, 'session.finished');
      await h.engine.stop({ graceMs: 1000 });
    });

    test('claims are disjoint between claimers and take leases; a stale completion is rejected', async () => {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'claims',
        agents: [
          { name: 'x', role: 'engineer', task: 't' },
          { name: 'y', role: 'engineer', task: 't' },
          { name: 'z', role: 'engineer', task: 't' },
        ],
      });
      const now = Date.now();
      const [first, second] = await Promise.all([
        h.engine.queue.run((trx) =>
          claimReadyTasks(trx, h.handle.dialect, { owner: 'w1', limit: 2, leaseMs: -1000, now }),
        ),
        h.engine.queue.run((trx) =>
          claimReadyTasks(trx, h.handle.dialect, { owner: 'w2', limit: 2, leaseMs: 60_000, now }),
        ),
      ]);
      const ids = [...first!, ...second!].map((row) => row.id);
      assert.equal(ids.length, 3);
      assert.equal(new Set(ids).size, 3, 'a task was claimed twice');
      for (const row of first!) assert.equal(row.lease_owner, 'w1');
      // w1's leases already expired: the reaper hands those tasks back (attempt 2 next time).
      const reaped = await h.engine.queue.run(async (trx) => {
        const out = [];
        for (const row of await findExpiredLeases(trx, Date.now(), 100))
          if (row.session_id === session.id) out.push(await expireTaskLease(trx, row, Date.now()));
        return out;
      });
      assert.equal(reaped.length, first!.length);
      assert.ok(reaped.every((effect) => effect.applied && effect.retried));
      const stale = first![0]!;
      const result = await h.engine.queue.run((trx) =>
        finishTask(
          trx,
          {
            taskId: stale.id,
            sessionId: session.id,
            tenantId: 'default',
            name: stale.name,
            owner: 'w1',
            attempt: Number(stale.attempts),
          },
          { ok: true, output: 'late', usage: zero },
          Date.now(),
        ),
      );
      assert.equal(result.applied, false);
      await h.engine.service.cancelSession(ACTOR, session.id);
    });

    test('a claimed task that never started can fail but not succeed (completion fencing)', async () => {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'fencing',
        agents: [
          { name: 'f1', role: 'engineer', task: 't' },
          { name: 'f2', role: 'engineer', task: 't' },
        ],
      });
      const claimed = await h.engine.queue.run((trx) =>
        claimReadyTasks(trx, h.handle.dialect, { owner: 'w3', limit: 2, leaseMs: 60_000, now: Date.now() }),
      );
      const mine = claimed.filter((row) => row.session_id === session.id);
      assert.equal(mine.length, 2);
      const claimOf = (row: (typeof mine)[number]) => ({
        taskId: row.id,
        sessionId: session.id,
        tenantId: 'default',
        name: row.name,
        owner: 'w3',
        attempt: Number(row.attempts),
      });
      // Still `leased` (never marked running): a result cannot be accepted, a failure can.
      const success = await h.engine.queue.run((trx) =>
        finishTask(trx, claimOf(mine[0]!), { ok: true, output: 'never ran', usage: zero }, Date.now()),
      );
      assert.equal(success.applied, false);
      const failure = await h.engine.queue.run((trx) =>
        finishTask(trx, claimOf(mine[1]!), { ok: false, error: 'could not start', usage: zero }, Date.now()),
      );
      assert.equal(failure.applied, true);
      await h.engine.service.cancelSession(ACTOR, session.id);
    });

    test('an idempotency key returns the first session, not a second one', async () => {
      const input = { objective: 'idem', agents: [{ name: 'a', role: 'engineer', task: 't' }] };
      const first = await h.engine.service.createSession(ACTOR, input, 'key-1');
      const again = await h.engine.service.createSession(ACTOR, input, 'key-1');
      assert.equal(first.created, true);
      assert.equal(again.created, false);
      assert.equal(again.session.id, first.session.id);
      await assert.rejects(
        h.engine.service.createSession(ACTOR, { ...input, objective: 'other' }, 'key-1'),
        (error: { code?: string }) => error.code === 'IDEMPOTENCY_KEY_REUSED',
      );
      await h.engine.service.cancelSession(ACTOR, first.session.id);
    });

    test('session listing pages through every session once, newest first', async () => {
      for (let i = 0; i < 5; i++) {
        const { session } = await h.engine.service.createSession(ACTOR, {
          objective: `page ${i}`,
          agents: [{ name: 'a', role: 'engineer', task: 't' }],
        });
        await h.engine.service.cancelSession(ACTOR, session.id);
      }
      const seen: string[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await h.engine.service.listSessions(ACTOR, {
          limit: 2,
          ...(cursor ? { cursor } : {}),
        });
        seen.push(...page.items.map((item) => item.id));
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
      assert.equal(new Set(seen).size, seen.length, 'a session appeared twice');
      const all = await h.engine.service.listSessions(ACTOR, { limit: 100 });
      assert.deepEqual(
        seen,
        all.items.map((item) => item.id),
      );
      assert.ok(seen.length >= 5);
    });

    test('two audit writers on one store keep one verifiable hash chain', async () => {
      const db = h.handle.db as unknown as SecurityDb;
      const a = createAuditLog({ db, origin: 'maos.test/audit' });
      const b = createAuditLog({ db, origin: 'maos.test/audit' });
      await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b).append(auditEvent(i))));
      await a.close();
      await b.close();
      const rows = await db
        .selectFrom('audit_log')
        .select(['seq', 'event', 'prev_hash', 'hash'])
        .orderBy('seq')
        .execute();
      assert.equal(rows.length, 30);
      const report = await verifyAuditEntries(rows.map((row) => ({ ...row, seq: Number(row.seq) })));
      assert.equal(report.ok, true, report.problems.join('; '));
    });
  });
}
