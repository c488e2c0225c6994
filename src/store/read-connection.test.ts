import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { createDatabase, type DatabaseHandle } from './db.ts';
import { migrateToLatest } from './migrate.ts';
import { findReadConnection } from './read-connection.ts';
import { newSessionRow } from './rows.ts';
import type { Database, SessionsTable } from './schema.ts';
import { readCommittedSessionRow } from './session-store.ts';

const STORE = { busyTimeoutMs: 1000, synchronous: 'normal' } as const;

function sessionRow(id: string, tenantId: string, status = 'running'): SessionsTable {
  const fields = { objective: 'read connection', strategy: 'sequential', metadata: '{}', started_at: null };
  return newSessionRow({ id, tenant_id: tenantId, status, ...fields }, 1);
}

async function addTenant(db: Kysely<Database>, id: string): Promise<void> {
  await (db as unknown as Kysely<{ tenants: { id: string; name: string; created_at: number } }>)
    .insertInto('tenants')
    .values({ id, name: id, created_at: 1 })
    .execute();
}

describe('SQLite read connection', () => {
  let dir: string;
  let handle: DatabaseHandle;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-read-connection-'));
    handle = createDatabase({ dataDir: dir, store: STORE });
    await migrateToLatest(handle.db);
    await addTenant(handle.db, 't1');
    await addTenant(handle.db, 't2');
  });
  afterEach(async () => {
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const read = (db: Kysely<Database>, tenantId: string, sessionId: string) => {
    const pending = readCommittedSessionRow(db, tenantId, sessionId);
    assert.ok(pending, 'a SQLite database has a read connection');
    return pending;
  };

  test('sees committed rows, of the right tenant only', async () => {
    await handle.db.insertInto('sessions').values(sessionRow('s1', 't1')).execute();
    const row = await read(handle.db, 't1', 's1');
    assert.equal(row.id, 's1');
    assert.equal(row.status, 'running');
    await assert.rejects(read(handle.db, 't2', 's1'), { code: 'SESSION_NOT_FOUND' });
    await assert.rejects(read(handle.db, 't1', 'missing'), { code: 'SESSION_NOT_FOUND' });
  });

  test('never sees an open transaction, and does not wait for it; sees it once committed', async () => {
    await handle.db.insertInto('sessions').values(sessionRow('s1', 't1')).execute();
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let inside!: () => void;
    const written = new Promise<void>((resolve) => {
      inside = resolve;
    });
    const transaction = handle.db.transaction().execute(async (trx) => {
      await trx.insertInto('sessions').values(sessionRow('s2', 't1')).execute();
      await trx
        .updateTable('sessions')
        .set({ status: 'completed', updated_at: 2 })
        .where('id', '=', 's1')
        .execute();
      inside();
      await released;
    });
    await written;
    // The write connection is held by the open transaction; the reader answers from the last
    // committed state without waiting for it.
    assert.equal((await read(handle.db, 't1', 's1')).status, 'running');
    await assert.rejects(read(handle.db, 't1', 's2'), { code: 'SESSION_NOT_FOUND' });
    release();
    await transaction;
    // Read-your-writes: the commit has returned, so the next read sees it.
    assert.equal((await read(handle.db, 't1', 's1')).status, 'completed');
    assert.equal((await read(handle.db, 't1', 's2')).id, 's2');
  });

  test('reads asked for in one turn share a batch: each gets its own answer, and all see earlier commits', async () => {
    await handle.db.insertInto('sessions').values(sessionRow('s1', 't1')).execute();
    const before = read(handle.db, 't1', 's1');
    const missing = read(handle.db, 't1', 'missing');
    // Committed before the batch runs (it runs after this turn): every read of the batch sees it,
    // also the one asked for before the write.
    await handle.db.updateTable('sessions').set({ status: 'failed' }).where('id', '=', 's1').execute();
    const after = read(handle.db, 't1', 's1');
    const otherTenant = read(handle.db, 't2', 's1');
    assert.equal((await before).status, 'failed');
    await assert.rejects(missing, { code: 'SESSION_NOT_FOUND' });
    assert.equal((await after).status, 'failed');
    await assert.rejects(otherTenant, { code: 'SESSION_NOT_FOUND' });
    // The shared transaction ended: a later commit is seen by the next batch.
    await handle.db.updateTable('sessions').set({ status: 'completed' }).where('id', '=', 's1').execute();
    const [first, second] = await Promise.all([read(handle.db, 't1', 's1'), read(handle.db, 't1', 's1')]);
    assert.equal(first.status, 'completed');
    assert.equal(second.status, 'completed');
  });

  test('a rolled-back transaction is never seen', async () => {
    await assert.rejects(
      handle.db.transaction().execute(async (trx) => {
        await trx.insertInto('sessions').values(sessionRow('s3', 't1')).execute();
        throw new Error('roll back');
      }),
      /roll back/,
    );
    await assert.rejects(read(handle.db, 't1', 's3'), { code: 'SESSION_NOT_FOUND' });
  });

  test('is read-only', () => {
    const reader = findReadConnection(handle.db);
    assert.ok(reader);
    assert.throws(
      () => reader.all("insert into tenants (id, name, created_at) values ('x', 'x', 1) returning id", []),
      {
        code: 'SQLITE_READONLY',
      },
    );
  });

  test('a transaction has none: its reads stay on the transaction', async () => {
    await handle.db.transaction().execute(async (trx) => {
      assert.equal(findReadConnection(trx), undefined);
      assert.equal(readCommittedSessionRow(trx, 't1', 's1'), undefined);
    });
  });
});

describe('SQLite read connection closed with reads still queued', () => {
  test('the reads are refused; nothing throws outside them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-read-connection-'));
    const handle = createDatabase({ dataDir: dir, store: STORE });
    try {
      await migrateToLatest(handle.db);
      const reads = [
        readCommittedSessionRow(handle.db, 't1', 's1'),
        readCommittedSessionRow(handle.db, 't1', 's2'),
      ];
      await handle.close();
      for (const read of reads) await assert.rejects(read as Promise<unknown>, /read connection is closed/);
    } finally {
      await handle.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SQLite read connection with query tracing on', () => {
  test('is not used, so that every read gets its database span', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-read-connection-'));
    const handle = createDatabase({ dataDir: dir, store: STORE }, { querySpanLogger: () => () => {} });
    try {
      assert.equal(findReadConnection(handle.db), undefined);
    } finally {
      await handle.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
