// Readiness checks against a real SQLite database: migrations current or pending, database
// closed, worker loop silent, shutdown, and a hung database that must not hang the probe.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { freePort } from '../../test/fixtures/free-port.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { createPostgresDatabase } from '../store/postgres-dialect.ts';
import { createReadinessChecks, runReadinessChecks } from './health.ts';

function openDb(dir: string): Kysely<Record<string, never>> {
  return new Kysely({ dialect: new SqliteDialect({ database: new Database(join(dir, 'maos.db')) }) });
}

async function withDb(fn: (db: Kysely<Record<string, never>>) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'maos-health-'));
  const db = openDb(dir);
  try {
    await fn(db);
  } finally {
    await db.destroy().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('readiness checks', () => {
  test('all pass on a migrated database with a live worker loop', async () => {
    await withDb(async (db) => {
      await migrateToLatest(db);
      const report = await runReadinessChecks({
        db,
        isShuttingDown: () => false,
        worker: { slots: 4, lastBeatAt: () => 9_000, maxAgeMs: 5_000 },
        now: () => 10_000,
      });
      assert.equal(report.ready, true, JSON.stringify(report));
      assert.deepEqual(Object.keys(report.checks), ['database', 'migrations', 'worker', 'shutdown']);
      assert.match(report.checks.migrations?.detail ?? '', /none pending/);
    });
  });

  test('pending migrations, a silent worker loop and shutdown each fail with a detail', async () => {
    await withDb(async (db) => {
      let shuttingDown = false;
      const checks = createReadinessChecks({
        db,
        isShuttingDown: () => shuttingDown,
        worker: { slots: 2, lastBeatAt: () => 1_000, maxAgeMs: 5_000 },
        now: () => 60_000,
      });
      let result = await checks();
      assert.equal(result.database?.ok, true);
      assert.equal(result.migrations?.ok, false);
      assert.match(result.migrations?.detail ?? '', /^pending: /);
      assert.equal(result.worker?.ok, false);
      assert.match(result.worker?.detail ?? '', /silent for 59 s/);
      assert.equal(result.shutdown?.ok, true);
      shuttingDown = true;
      result = await checks();
      assert.deepEqual(result.shutdown, { ok: false, detail: 'shutting down' });
    });
  });

  test('a database a newer release migrated under the running process stays ready (rolling upgrade)', async () => {
    await withDb(async (db) => {
      await migrateToLatest(db);
      await sql`insert into kysely_migration (name, timestamp) values ('9999-next-release', '2030-01-01')`.execute(
        db,
      );
      const report = await runReadinessChecks({ db });
      assert.equal(report.ready, true);
      assert.equal(report.checks.migrations?.ok, true);
      assert.match(report.checks.migrations?.detail ?? '', /newer than this build \(9999-next-release\)/);
    });
  });

  test('an API-only process passes the worker check; a worker that never beat fails it', async () => {
    await withDb(async (db) => {
      await migrateToLatest(db);
      const apiOnly = await runReadinessChecks({
        db,
        worker: { slots: 0, lastBeatAt: () => undefined, maxAgeMs: 1 },
      });
      assert.equal(apiOnly.checks.worker?.ok, true);
      const notStarted = await runReadinessChecks({
        db,
        worker: { slots: 1, lastBeatAt: () => undefined, maxAgeMs: 1 },
      });
      assert.deepEqual(notStarted.checks.worker, { ok: false, detail: 'worker loop has not started' });
    });
  });

  test('an unreachable database fails the database check (by its code, not its message) and skips migrations', async () => {
    const refusal = Object.assign(
      new Error('password authentication failed for user "maos_prod" on db.internal'),
      {
        code: '28P01',
      },
    );
    const broken = new Kysely<Record<string, never>>({
      dialect: new SqliteDialect({
        database: async () => {
          throw refusal;
        },
      }),
    });
    const report = await runReadinessChecks({ db: broken });
    assert.equal(report.ready, false);
    // The answer of the public /readyz: no user, host or path of the database.
    assert.deepEqual(report.checks.database, { ok: false, detail: 'unreachable (28P01)' });
    assert.match(report.checks.migrations?.detail ?? '', /database unreachable/);
  });

  test('an unreachable PostgreSQL is named by the driver code, not by the STORE_UNAVAILABLE wrapping it', async () => {
    // A port nothing listens on: the connection is refused.
    const handle = createPostgresDatabase({
      url: `postgres://maos:secret@127.0.0.1:${await freePort()}/maos`,
      poolSize: 1,
      connectTimeoutMs: 2000,
      stalledQueryCheckMs: 30_000,
    });
    try {
      const report = await runReadinessChecks({ db: handle.db });
      assert.deepEqual(report.checks.database, { ok: false, detail: 'unreachable (ECONNREFUSED)' });
    } finally {
      await handle.close();
    }
  });

  test('a hung database times out instead of hanging the probe', async () => {
    const hung = new Kysely<Record<string, never>>({
      dialect: new SqliteDialect({
        database: async () => new Promise(() => {}),
      }),
    });
    const report = await runReadinessChecks({ db: hung, timeoutMs: 50 });
    assert.equal(report.checks.database?.ok, false);
    assert.match(report.checks.database?.detail ?? '', /timed out after 50 ms/);
  });
});
