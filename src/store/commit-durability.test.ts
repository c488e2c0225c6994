import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { configSchema } from '../config/schema.ts';
import { createDatabase, type DatabaseHandle } from './db.ts';
import { migrateToLatest } from './migrate.ts';

describe('commit durability (synchronous: full)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-durability-'));
  let handle: DatabaseHandle;
  before(async () => {
    handle = createDatabase(configSchema.parse({ dataDir: dir, store: { busyTimeoutMs: 1000 } }));
    await migrateToLatest(handle.db);
  });
  after(async () => {
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const flushes = () => handle.durability?.stats().flushes ?? Number.NaN;
  /** WAL flushes `run` caused before it was answered; nothing may be left unflushed after it. */
  const flushesOf = async (run: () => Promise<unknown>) => {
    const before = flushes();
    await run().catch(() => undefined);
    assert.equal(handle.durability?.whenDurable(), undefined, 'answered only once on disk');
    return flushes() - before;
  };
  const tenant = (id: string) => ({ id, name: id, created_at: 1 });

  test('is on by default and leaves SQLite at NORMAL: the fsync runs off the event loop', async () => {
    assert.ok(handle.durability);
    const { rows } = await sql<{ synchronous: number }>`pragma synchronous`.execute(handle.db);
    assert.equal(rows[0]?.synchronous, 1);
  });

  test('each committed write is flushed before it is answered; reads and no-op writes are not', async () => {
    assert.equal(await flushesOf(() => handle.db.insertInto('tenants').values(tenant('c1')).execute()), 1);
    assert.equal(
      await flushesOf(() =>
        handle.db.transaction().execute(async (trx) => {
          await trx.insertInto('tenants').values(tenant('c2')).execute();
          await trx.updateTable('tenants').set({ name: 'two' }).where('id', '=', 'c2').execute();
        }),
      ),
      1,
    );
    assert.equal(
      await flushesOf(() => handle.db.insertInto('tenants').values(tenant('c3')).returning('id').execute()),
      1,
    );
    assert.equal(await flushesOf(() => handle.db.selectFrom('tenants').selectAll().execute()), 0);
    assert.equal(await flushesOf(() => sql`pragma journal_mode`.execute(handle.db)), 0);
    assert.equal(
      await flushesOf(() =>
        handle.db.updateTable('tenants').set({ name: 'x' }).where('id', '=', 'no-such-tenant').execute(),
      ),
      0,
    );
  });

  test('schema changes are flushed; a rolled-back transaction leaves nothing to flush', async () => {
    assert.equal(
      await flushesOf(() => sql`create table scratch (id integer primary key)`.execute(handle.db)),
      1,
    );
    assert.equal(
      await flushesOf(() =>
        handle.db.transaction().execute(async (trx) => {
          await trx.insertInto('tenants').values(tenant('c4')).execute();
          throw new Error('changed my mind');
        }),
      ),
      0,
    );
    const row = await handle.db.selectFrom('tenants').select('id').where('id', '=', 'c4').executeTakeFirst();
    assert.equal(row, undefined);
  });

  test('`synchronous: normal` has no flushes to wait for', async () => {
    const normal = createDatabase(
      configSchema.parse({ dataDir: join(dir, 'normal'), store: { synchronous: 'normal' } }),
    );
    try {
      assert.equal(normal.durability, undefined);
    } finally {
      await normal.close();
    }
  });
});
