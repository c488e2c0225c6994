// What the docs tell an operator about a migration waiting on PostgreSQL's migration lock, against a
// real server: the troubleshooting query finds the session that holds the lock while a migration
// waits, ending that session lets the migration through, and the server-side TCP keepalive settings
// recommended in operations-cluster.md are accepted as given and applied to new connections.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { configSchema } from '../../src/config/schema.ts';
import { LOCK_KEYS } from '../../src/store/advisory-lock.ts';
import { createDatabase } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { waitFor } from '../fixtures/wait-for.ts';

const doc = (name: string) => readFileSync(new URL(`../../docs/${name}`, import.meta.url), 'utf8');

async function connect(url: string, applicationName = 'maos-test'): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  await client.connect();
  return client;
}

test('a migration waiting on a vanished holder of its lock: the troubleshooting query finds it, ending it lets the migration through', async (t) => {
  const database = await createTestDatabase();
  t.after(() => database.drop());
  const troubleshooting = doc('troubleshooting.md');
  const holderQuery = /`(SELECT a\.pid[^`]*pg_locks[^`]*)`/.exec(troubleshooting)?.[1];
  assert.ok(holderQuery, 'the troubleshooting entry gives the query for the lock holder');
  const terminate = /`(SELECT pg_terminate_backend\(<pid>\))`/.exec(troubleshooting)?.[1];
  assert.ok(terminate, 'and the statement that ends its session');

  // The replica that took the lock to migrate and then vanished: its session stays on the server.
  const holder = await connect(database.url, 'maos');
  // Ended by the test (as the operator would); dropping the database ends the others.
  holder.on('error', () => undefined);
  await holder.query('select pg_advisory_lock($1)', [LOCK_KEYS.migrate]);
  const holderPid = Number((await holder.query('select pg_backend_pid() as pid')).rows[0].pid);

  const dir = mkdtempSync(join(tmpdir(), 'maos-migration-lock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const handle = createDatabase(configSchema.parse({ dataDir: dir, store: { url: database.url } }));
  t.after(() => handle.close());
  let settled = false;
  const migrating = migrateToLatest(handle.db).finally(() => {
    settled = true;
  });

  const admin = await connect(database.url);
  t.after(() => admin.end());
  admin.on('error', () => undefined);
  await waitFor(
    async () =>
      (
        await admin.query(
          `select 1 from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock' and wait_event = 'advisory'`,
        )
      ).rowCount === 1,
    10_000,
    'the migration waiting for the lock',
  );
  assert.equal(settled, false);
  const held = await admin.query(holderQuery);
  assert.deepEqual(
    held.rows.map((row) => Number(row.pid)),
    [holderPid],
  );

  await admin.query(terminate.replace('<pid>', String(holderPid)));
  // Nothing was pending: the migration only had to get the lock.
  assert.deepEqual(await migrating, []);
  assert.equal((await admin.query(holderQuery)).rowCount, 0, 'and released it');
});

test('the server-side TCP keepalive settings of operations-cluster.md are accepted and applied', async (t) => {
  const database = await createTestDatabase();
  t.after(() => database.drop());
  const block = /```ini\n([\s\S]*?)```/.exec(
    doc('operations-cluster.md').slice(doc('operations-cluster.md').indexOf('Server-side TCP keepalive')),
  )?.[1];
  const settings = [...(block ?? '').matchAll(/^\s*(tcp_keepalives_\w+) = (\d+)$/gm)].map(
    ([, name, value]) => [name ?? '', value ?? ''] as const,
  );
  assert.deepEqual(
    settings.map(([name]) => name),
    ['tcp_keepalives_idle', 'tcp_keepalives_interval', 'tcp_keepalives_count'],
  );
  // As `ALTER DATABASE maos SET …` (the doc's alternative to postgresql.conf): new connections get them.
  const name = new URL(database.url).pathname.slice(1);
  const admin = await connect(database.url);
  try {
    for (const [setting, value] of settings)
      await admin.query(`alter database ${name} set ${setting} = ${value}`);
  } finally {
    await admin.end();
  }
  // Over TCP, as the replicas connect (on a Unix socket the server reports 0 for each).
  const client = await connect(database.url);
  try {
    for (const [setting, value] of settings) {
      assert.equal((await client.query(`show ${setting}`)).rows[0][setting], value, setting);
    }
  } finally {
    await client.end();
  }
});
