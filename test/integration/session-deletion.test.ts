// Deleting a whole finished session (engine/delete-session.ts over store/session-deletion.ts) on
// SQLite and PostgreSQL: every row of it goes, in every table that holds session data, in bounded
// steps through the write queue; other sessions and the tenant's spend ledger stay (and a run of it
// still stopping charges the ledger afterwards); a session that
// has not finished, another tenant's and an unknown one are refused without deleting anything; two
// deletions of one session at once (two replicas) end with it gone, and neither fails otherwise.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Kysely, type KyselyPlugin, sql } from 'kysely';
import { deleteFinishedSession } from '../../src/engine/delete-session.ts';
import { chargeUnappliedRun } from '../../src/engine/task-ops.ts';
import { AppError } from '../../src/errors/app-error.ts';
import type { DatabaseHandle } from '../../src/store/db.ts';
import {
  deleteSessionOutputs,
  deleteSessionRecord,
  SESSION_TABLES,
} from '../../src/store/session-deletion.ts';
import { createWriteQueue, type WriteQueue } from '../../src/store/write-queue.ts';
import { countSessionRows, NO_ROWS, seededRowCounts, seedSessionRows } from '../fixtures/session-rows.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

// biome-ignore lint/suspicious/noExplicitAny: reads tables of several areas' schemas
type AnyDb = Kysely<any>;

const NOW = Date.now();
const LEDGER_DAY = NOW - (NOW % 86_400_000);

async function ledger(db: AnyDb): Promise<unknown[]> {
  return db.selectFrom('tenant_usage_days').selectAll().orderBy('tenant_id').orderBy('day').execute();
}

function rejectsWith(code: string) {
  return (error: unknown) => {
    assert.ok(error instanceof AppError, String(error));
    assert.equal(error.code, code, error.message);
    return true;
  };
}

/** Every table with a `session_id` column (the tables that hold a session's data), from the catalogue. */
async function tablesWithSessionColumn(db: AnyDb, postgres: boolean): Promise<string[]> {
  if (postgres) {
    const { rows } = await sql<{ name: string }>`
      select table_name as name from information_schema.columns
      where table_schema = current_schema() and column_name = 'session_id'`.execute(db);
    return rows.map((row) => row.name).sort();
  }
  const { rows } = await sql<{ name: string }>`
    select m.name from sqlite_master m, pragma_table_info(m.name) c
    where m.type = 'table' and c.name = 'session_id'`.execute(db);
  return rows.map((row) => row.name).sort();
}

for (const backend of STORE_BACKENDS) {
  describe(`deleting a finished session: ${backend.name}`, { timeout: 120_000 }, () => {
    let handles: DatabaseHandle[];
    let queues: WriteQueue[];
    let dispose: () => Promise<void>;
    before(async () => {
      const opened = await backend.open(2);
      handles = opened.handles;
      dispose = opened.dispose;
      queues = handles.map((handle) => createWriteQueue({ db: handle.db, dialect: handle.dialect }));
      await handles[0]!.db
        .insertInto('tenants')
        .values({ id: 'other', name: 'Other', created_at: NOW })
        .execute();
    });
    after(async () => {
      for (const queue of queues ?? []) await queue.close();
      await dispose?.();
    });

    test('every table that holds session data is one the deletion empties', async () => {
      const [a] = handles as [DatabaseHandle];
      const expected = SESSION_TABLES.filter((table) => table !== 'sessions').sort();
      const found = await tablesWithSessionColumn(a.db, backend.name === 'postgres');
      assert.deepEqual(found, expected);
    });

    test('all rows of the session go, in steps; its neighbours and the spend ledger stay', async () => {
      const [a] = handles as [DatabaseHandle];
      const [queue] = queues as [WriteQueue];
      // More outputs than one step deletes: several steps, the last one with the record.
      const doomed = { id: 'doomed', status: 'completed', finishedAt: NOW - 1000, events: 23, messages: 4 };
      await seedSessionRows(a.db, doomed);
      await seedSessionRows(a.db, { id: 'neighbour', status: 'failed', finishedAt: NOW - 1000 });
      await a.db
        .insertInto('tenant_usage_days')
        .values({
          tenant_id: 'default',
          day: LEDGER_DAY,
          input_tokens: 10,
          output_tokens: 5,
          cache_read_tokens: 0,
          cost_usd: 0.01,
        })
        .execute();
      const spend = await ledger(a.db);
      assert.deepEqual(await countSessionRows(a.db, 'doomed'), seededRowCounts(doomed));

      await deleteFinishedSession(queue, 'default', 'doomed', 10);

      assert.deepEqual(await countSessionRows(a.db, 'doomed'), NO_ROWS);
      assert.deepEqual(await countSessionRows(a.db, 'neighbour'), seededRowCounts({}));
      assert.deepEqual(await ledger(a.db), spend);
      // Gone: a second deletion finds nothing.
      await assert.rejects(
        deleteFinishedSession(queue, 'default', 'doomed'),
        rejectsWith('SESSION_NOT_FOUND'),
      );
    });

    test('a session that has not finished is refused, and nothing of it is deleted', async () => {
      const [a] = handles as [DatabaseHandle];
      for (const status of ['pending', 'planning', 'awaiting_approval', 'running', 'paused']) {
        const id = `open-${status}`;
        await seedSessionRows(a.db, { id, status, finishedAt: null });
        await assert.rejects(deleteFinishedSession(queues[0]!, 'default', id), (error: unknown) => {
          assert.ok(error instanceof AppError);
          assert.equal(error.code, 'INVALID_STATE');
          assert.match(error.message, /cancel it first/);
          return true;
        });
        assert.deepEqual(await countSessionRows(a.db, id), seededRowCounts({}));
      }
    });

    test("another tenant's session and an unknown one are not found; nothing is deleted", async () => {
      const [a] = handles as [DatabaseHandle];
      await seedSessionRows(a.db, { id: 'theirs', tenantId: 'other', status: 'cancelled', finishedAt: NOW });
      await assert.rejects(
        deleteFinishedSession(queues[0]!, 'default', 'theirs'),
        rejectsWith('SESSION_NOT_FOUND'),
      );
      assert.deepEqual(await countSessionRows(a.db, 'theirs'), seededRowCounts({}));
      await assert.rejects(
        deleteFinishedSession(queues[0]!, 'default', 'nobody'),
        rejectsWith('SESSION_NOT_FOUND'),
      );
    });

    test('a run still stopping when its session was deleted charges its spend to the tenant ledger', async () => {
      const [a] = handles as [DatabaseHandle];
      const [queue] = queues as [WriteQueue];
      await seedSessionRows(a.db, { id: 'stopping', status: 'cancelled', finishedAt: NOW - 1000 });
      await deleteFinishedSession(queue, 'default', 'stopping');
      // Its run (of the cancelled task) ends now: what it spent is charged, with nothing left to add it to.
      const claim = {
        taskId: 'stopping-task-second',
        sessionId: 'stopping',
        tenantId: 'default',
        name: 'second',
        owner: 'worker-1',
        attempt: 1,
      };
      const spent = { inputTokens: 70, outputTokens: 30, cacheReadTokens: 0, costUsd: 0.25 };
      const day = (now: number) => now - (now % 86_400_000);
      const later = NOW + 86_400_000 * 3;
      await queue.run((trx) => chargeUnappliedRun(trx, claim, { usage: spent }, later));
      const charged = await a.db
        .selectFrom('tenant_usage_days')
        .select(['input_tokens', 'output_tokens', 'cost_usd'])
        .where('tenant_id', '=', 'default')
        .where('day', '=', day(later))
        .executeTakeFirst();
      assert.deepEqual(
        {
          input: Number(charged?.input_tokens),
          output: Number(charged?.output_tokens),
          cost: charged?.cost_usd,
        },
        { input: 70, output: 30, cost: 0.25 },
      );
      assert.deepEqual(await countSessionRows(a.db, 'stopping'), NO_ROWS);
    });

    test('a deletion runs the same statements whenever it runs, and records its time', async () => {
      const [a] = handles as [DatabaseHandle];
      // SQLite keeps prepared statements by their text (a bounded cache, oldest out first): a text
      // of its own per deletion would fill it and push the engine's statements out, one per deletion.
      const statementsOf = async (id: string, now: number): Promise<string[]> => {
        await seedSessionRows(a.db, { id, status: 'completed', finishedAt: now - 1000, events: 3 });
        const texts: string[] = [];
        const recorder: KyselyPlugin = {
          transformQuery(args) {
            texts.push(a.db.getExecutor().compileQuery(args.node, args.queryId).sql);
            return args.node;
          },
          transformResult: async (args) => args.result,
        };
        await a.db.transaction().execute(async (trx) => {
          const recorded = trx.withPlugin(recorder);
          await deleteSessionOutputs(recorded, id, 100, now);
          await deleteSessionRecord(recorded, id, now);
        });
        return texts;
      };
      const first = await statementsOf('timed-1', NOW);
      const second = await statementsOf('timed-2', NOW + 12_345);
      assert.ok(first.some((text) => text.includes('deleted_sessions')));
      assert.deepEqual(second, first);
      const recorded = await a.db
        .selectFrom('deleted_sessions')
        .select(['id', 'deleted_at'])
        .where('id', 'in', ['timed-1', 'timed-2'])
        .orderBy('id')
        .execute();
      assert.deepEqual(
        recorded.map((row) => [row.id, Number(row.deleted_at)]),
        [
          ['timed-1', NOW],
          ['timed-2', NOW + 12_345],
        ],
      );
    });

    test('two deletions of one session at once: it is gone, and neither fails otherwise', async () => {
      const [a] = handles as [DatabaseHandle];
      await seedSessionRows(a.db, { id: 'twice', status: 'cancelled', finishedAt: NOW, events: 40 });
      // SQLite has one server process with one write queue: both deletions go through it.
      const [first, second] = backend.name === 'postgres' ? queues : [queues[0], queues[0]];
      const results = await Promise.allSettled(
        [first!, second!].map((queue) => deleteFinishedSession(queue, 'default', 'twice', 7)),
      );
      // The one that first finds it gone answers SESSION_NOT_FOUND; one started before succeeds.
      assert.ok(results.some((result) => result.status === 'fulfilled'));
      for (const result of results) {
        if (result.status === 'rejected') rejectsWith('SESSION_NOT_FOUND')(result.reason);
      }
      assert.deepEqual(await countSessionRows(a.db, 'twice'), NO_ROWS);
    });
  });
}
