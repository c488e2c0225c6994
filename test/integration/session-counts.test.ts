// Sessions per status for the `maos_sessions` gauge, on both stores: unfinished statuses counted at
// every read, finished ones reused until the refresh interval has passed, a failed count not reused.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import type { SessionStatus } from '../../src/domain/types.ts';
import { newSessionRow } from '../../src/store/rows.ts';
import type { Database } from '../../src/store/schema.ts';
import { createSessionCounter } from '../../src/store/session-counts.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

async function insertSessions(db: Kysely<Database>, status: SessionStatus, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, () => randomUUID());
  for (const id of ids) {
    await db
      .insertInto('sessions')
      .values(
        newSessionRow(
          {
            id,
            tenant_id: 'acme',
            objective: 'count me',
            strategy: 'parallel',
            status,
            metadata: '{}',
            started_at: 1,
          },
          1,
        ),
      )
      .execute();
  }
  return ids;
}

for (const backend of STORE_BACKENDS) {
  describe(`sessions per status for the gauge (${backend.name})`, { timeout: 60_000 }, () => {
    test('unfinished counted at each read, finished reused within the refresh interval', async () => {
      const { handles, dispose } = await backend.open(1);
      try {
        const db = handles[0]!.db;
        await db.insertInto('tenants').values({ id: 'acme', name: 'acme', created_at: 0 }).execute();
        const running = await insertSessions(db, 'running', 3);
        await insertSessions(db, 'pending', 1);
        await insertSessions(db, 'completed', 4);
        await insertSessions(db, 'failed', 2);
        let clock = 1_000_000;
        const count = createSessionCounter(db, { finishedRefreshMs: 60_000, now: () => clock });
        assert.deepEqual(await count(), { running: 3, pending: 1, completed: 4, failed: 2 });

        // Two sessions end, one is deleted, a new one is submitted, 59 s later.
        await db
          .updateTable('sessions')
          .set({ status: 'completed' })
          .where('id', 'in', running.slice(0, 2))
          .execute();
        await db
          .deleteFrom('sessions')
          .where('status', '=', 'failed')
          .where('id', 'in', [
            (
              await db
                .selectFrom('sessions')
                .select('id')
                .where('status', '=', 'failed')
                .executeTakeFirstOrThrow()
            ).id,
          ])
          .execute();
        await insertSessions(db, 'awaiting_approval', 1);
        clock += 59_000;
        assert.deepEqual(
          await count(),
          { running: 1, pending: 1, awaiting_approval: 1, completed: 4, failed: 2 },
          'unfinished as of now, finished as counted 59 s ago',
        );
        clock += 1_000;
        assert.deepEqual(await count(), {
          running: 1,
          pending: 1,
          awaiting_approval: 1,
          completed: 6,
          failed: 1,
        });

        // A clock that goes back an hour does not keep the count for the hour: it is counted again.
        await insertSessions(db, 'failed', 1);
        clock -= 3_600_000;
        assert.deepEqual(await count(), {
          running: 1,
          pending: 1,
          awaiting_approval: 1,
          completed: 6,
          failed: 2,
        });
        await db.deleteFrom('sessions').where('status', '=', 'failed').execute();
        await insertSessions(db, 'failed', 1);

        // Without a refresh interval, every read counts everything.
        const exact = createSessionCounter(db, { finishedRefreshMs: 0 });
        await insertSessions(db, 'cancelled', 2);
        assert.deepEqual(await exact(), {
          running: 1,
          pending: 1,
          awaiting_approval: 1,
          completed: 6,
          failed: 1,
          cancelled: 2,
        });
      } finally {
        await dispose();
      }
    });

    test('a failed count of finished sessions is not reused', async () => {
      const { handles, dispose } = await backend.open(1);
      try {
        const db = handles[0]!.db;
        await db.insertInto('tenants').values({ id: 'acme', name: 'acme', created_at: 0 }).execute();
        await insertSessions(db, 'completed', 2);
        let queries = 0;
        // A view of the database whose second query fails: the first read's count of finished sessions.
        const flaky = db.withPlugin({
          transformQuery(args) {
            if (++queries === 2) throw new Error('database unreachable');
            return args.node;
          },
          transformResult: async (args) => args.result,
        });
        const count = createSessionCounter(flaky, { finishedRefreshMs: 60_000, now: () => 0 });
        await assert.rejects(count(), /database unreachable/);
        assert.deepEqual(await count(), { completed: 2 });
      } finally {
        await dispose();
      }
    });
  });
}
