// Readiness checks against a real SQLite file: pending migrations, current schema, shutdown.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createDatabase } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { createReadinessProbe } from './readiness.ts';

test('readiness follows migrations, database reachability and shutdown', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-ready-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const handle = createDatabase({ dataDir, store: { synchronous: 'normal', busyTimeoutMs: 1000 } });
  let shuttingDown = false;
  const probe = createReadinessProbe({ db: handle.db, isShuttingDown: () => shuttingDown });

  const before = await probe();
  assert.equal(before.database?.ok, true);
  assert.equal(before.migrations?.ok, false);
  assert.match(before.migrations?.detail ?? '', /^pending: /);

  await migrateToLatest(handle.db);
  const after = await probe();
  assert.deepEqual(
    Object.values(after).map((check) => check.ok),
    [true, true, true],
  );

  shuttingDown = true;
  assert.equal((await probe()).shutdown?.ok, false);

  await handle.close();
  const closed = await probe();
  assert.equal(closed.database?.ok, false);
  assert.equal(closed.migrations?.ok, false);
});
