// `maos store copy`: an installation that outgrew one machine moves its data from the embedded
// SQLite file to PostgreSQL (and back). Everything a user had is there on the other side: sessions
// with their events and results, API keys that still authenticate, custom roles, usage, and an
// audit log whose chain verifies. A copy that cannot be done is refused before anything is written,
// and a copy that fails midway leaves the target without data.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { configSchema } from '../../src/config/schema.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { createDatabase, type DatabaseHandle } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { MIGRATIONS } from '../../src/store/migrations/index.ts';
import { LISTEN_APPLICATION_NAME } from '../../src/store/postgres-dialect.ts';
import { acquireServerLock } from '../../src/store/server-lock.ts';
import { COPIED_TABLES } from '../../src/store/store-copy.ts';
import { type RunCliOptions, runMaos } from '../fixtures/cli.ts';
import { readCopiedTables } from '../fixtures/copied-tables.ts';
import { type ScriptedLlmServer, startLlmServer } from '../fixtures/llm-server.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';

interface CopyJson {
  source: string;
  target: string;
  tables: { name: string; rows: number }[];
  skipped: string[];
  audit: { copiedRecords: number; head: string | null; records: number; intact: boolean };
}

type Row = Record<string, unknown>;

/** Runs `maos store copy --config <config> <args>`. */
function copyStore(config: string, args: string[], options: RunCliOptions = {}): ReturnType<typeof runMaos> {
  return runMaos(['store', 'copy', '--config', config, ...args], options);
}

function writeConfig(dir: string, name: string, config: Record<string, unknown>): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify({ store: { synchronous: 'normal' }, ...config }));
  return path;
}

/** Every row of every copied table, in key order. */
async function readTables(config: Record<string, unknown>): Promise<Map<string, Row[]>> {
  const handle: DatabaseHandle = createDatabase(configSchema.parse(config), { readsDatabaseOnly: true });
  try {
    return await readCopiedTables(handle.db);
  } finally {
    await handle.close();
  }
}

describe('maos store copy', { timeout: 240_000 }, () => {
  let dir: string;
  let sourceDir: string;
  let sourceConfig: string;
  let postgres: TestDatabase;
  let apiKey: string;
  let llm: ScriptedLlmServer;
  const sessionIds: string[] = [];
  /** Config of both servers: API keys, and a provider (custom roles and LLM agents need one). */
  const serverConfig = (extra: Record<string, unknown> = {}) => ({
    auth: { mode: 'apikey' },
    providers: { local: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'm', apiKey: 'k' } },
    llm: { retry: { maxAttempts: 1 }, agentMessaging: false },
    ...extra,
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-store-copy-'));
    sourceDir = join(dir, 'data');
    sourceConfig = writeConfig(dir, 'sqlite.json', { dataDir: sourceDir });
    postgres = await createTestDatabase({ empty: true });
    llm = await startLlmServer({
      apiKey: 'k',
      handler: () => ({ text: 'an answer', usage: { inputTokens: 30, outputTokens: 12 } }),
    });
    // A used installation: a key made by the operator, sessions run through the API with it, a
    // custom role; each of them audited.
    const created = await runMaos(['keys', 'create', '--config', sourceConfig, '--role', 'admin']);
    assert.equal(created.code, 0, created.stderr);
    apiKey = created.stdout.trim();
    const server = await startTestServer({ dataDir: sourceDir, config: serverConfig() });
    try {
      const headers = { authorization: `Bearer ${apiKey}` };
      const role = await requestJson(`${server.url}/v1/roles`, {
        method: 'POST',
        headers,
        body: {
          name: 'archivist',
          description: 'keeps records',
          instructions: 'File every record you are given, by date.',
        },
      });
      assert.equal(role.status, 201, JSON.stringify(role.body));
      for (const objective of ['first objective', 'second objective']) {
        const submitted = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
          method: 'POST',
          headers,
          body: {
            objective,
            agents: [
              { name: 'a', role: 'engineer', task: 'first', runner: 'echo' },
              { name: 'b', role: 'archivist', task: 'second', depends_on: ['a'] },
            ],
          },
        });
        assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
        await waitForSession(server.url, submitted.body.id, undefined, 30_000, headers);
        sessionIds.push(submitted.body.id);
      }
    } finally {
      await server.close();
    }
  });

  after(async () => {
    await llm?.close();
    await postgres?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('SQLite to PostgreSQL and back: every row arrives, keys authenticate, the audit chain verifies', async () => {
    // A dry run first: what would be copied, and not a table created in the target.
    const planned = await copyStore(sourceConfig, ['--to', postgres.url, '--dry-run', '--json']);
    assert.equal(planned.code, 0, planned.stderr);
    const plan = JSON.parse(planned.stdout) as {
      dryRun: boolean;
      targetExists: boolean;
      pendingMigrations: number;
      tables: { name: string; rows: number }[];
    };
    assert.equal(plan.dryRun, true);
    assert.equal(plan.pendingMigrations, MIGRATIONS.length);
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    try {
      const { rows } = await client.query(
        "select count(*)::int as n from information_schema.tables where table_schema = 'public'",
      );
      assert.equal(rows[0].n, 0, 'the dry run created nothing in the target');
    } finally {
      await client.end();
    }

    const copied = await copyStore(sourceConfig, ['--to', postgres.url, '--json']);
    assert.equal(copied.code, 0, copied.stderr);
    const report = JSON.parse(copied.stdout) as CopyJson;
    assert.equal(report.source, join(sourceDir, 'maos.db'));
    const password = decodeURIComponent(new URL(postgres.url).password);
    assert.ok(password.length > 0 && !copied.stdout.includes(password), 'the target password is not printed');
    const rowsOf = (name: string) => report.tables.find((table) => table.name === name)?.rows;
    assert.deepEqual(plan.tables, report.tables, 'the dry run counted what the copy then copied');
    assert.equal(rowsOf('sessions'), 2);
    assert.equal(rowsOf('tasks'), 4);
    assert.equal(rowsOf('api_keys'), 1);
    assert.equal(rowsOf('custom_roles'), 1);
    assert.equal(rowsOf('tenant_usage_days'), 1, "the LLM agents' spend of today");
    assert.ok((rowsOf('events') ?? 0) > 8);
    assert.ok(report.audit.copiedRecords >= 4, 'key creation, role and sessions were audited');
    // The copy's own record follows the copied ones, and the chain verifies.
    assert.equal(report.audit.records, report.audit.copiedRecords + 1);
    assert.equal(report.audit.intact, true);
    assert.ok(report.skipped.includes('mcp_stream_events'));
    // The source's own chain still verifies against the shared checkpoint directory: the copy
    // signed its record in the target's database only, not with a file the source never matches.
    const sourceVerified = await runMaos(['audit', 'verify', '--config', sourceConfig, '--json']);
    assert.equal(sourceVerified.code, 0, sourceVerified.stderr + sourceVerified.stdout);

    // Back to a new SQLite file: byte for byte the rows of the source, plus the copies' records.
    const roundTrip = join(dir, 'round-trip', 'maos.db');
    const pgConfig = writeConfig(dir, 'postgres.json', { dataDir: sourceDir, store: { url: postgres.url } });
    const back = await copyStore(pgConfig, ['--to', `sqlite:${roundTrip}`]);
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, /copied\s+sessions\s+2/);
    assert.match(back.stdout, /chain intact/);
    const original = await readTables({ dataDir: sourceDir, store: { synchronous: 'normal' } });
    const returned = await readTables({ dataDir: dir, store: { url: `sqlite:${roundTrip}` } });
    for (const table of COPIED_TABLES) {
      const before = original.get(table.name) ?? [];
      const after = returned.get(table.name) ?? [];
      if (table.name === 'audit_log') {
        assert.deepEqual(after.slice(0, before.length), before, 'the audit records are unchanged');
        assert.deepEqual(
          after.slice(before.length).map((row) => row.action),
          ['store:copy', 'store:copy'],
        );
      } else if (table.name === 'audit_checkpoints') {
        assert.deepEqual(after.slice(0, before.length), before);
      } else assert.deepEqual(after, before, `${table.name} came back as it was`);
    }

    // A server on PostgreSQL serves what the SQLite one stored, to the same key.
    const server = await startTestServer({
      dataDir: sourceDir,
      config: serverConfig({ store: { url: postgres.url } }),
    });
    try {
      const headers = { authorization: `Bearer ${apiKey}` };
      for (const id of sessionIds) {
        const session = await requestJson<{ status: string; objective: string }>(
          `${server.url}/v1/sessions/${id}`,
          { headers },
        );
        assert.equal(session.status, 200, JSON.stringify(session.body));
        assert.equal(session.body.status, 'completed');
      }
      const roles = await requestJson<{ items: { name: string }[] }>(`${server.url}/v1/roles`, { headers });
      assert.ok(roles.body.items.some((role) => role.name === 'archivist'));
      // New work continues on PostgreSQL.
      const submitted = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
        method: 'POST',
        headers,
        body: {
          objective: 'after the move',
          agents: [{ name: 'a', role: 'engineer', task: 'x', runner: 'echo' }],
        },
      });
      assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
      const done = await waitForSession<{ status: string }>(
        server.url,
        submitted.body.id,
        undefined,
        30_000,
        headers,
      );
      assert.equal(done.status, 'completed');
      // No copy from (or into) a database replicas are connected to: they would write past it.
      const busy = await copyStore(pgConfig, ['--to', `sqlite:${join(dir, 'busy.db')}`]);
      assert.equal(busy.code, 6, busy.stderr);
      assert.match(
        busy.stderr,
        /CONFLICT: MAOS replicas are connected to the source database .*stop every replica/,
      );
    } finally {
      await server.close();
    }
    const verified = await runMaos(['audit', 'verify', '--config', pgConfig, '--json']);
    assert.equal(verified.code, 0, verified.stderr + verified.stdout);
    assert.equal((JSON.parse(verified.stdout) as { ok: boolean }).ok, true);

    // A second copy into the now used database is refused, and changes nothing there.
    const sessionsBefore = (await readTables({ dataDir: dir, store: { url: postgres.url } })).get('sessions');
    const again = await copyStore(sourceConfig, ['--to', postgres.url]);
    assert.equal(again.code, 6, again.stderr);
    assert.match(again.stderr, /CONFLICT: The target database already holds data \(in sessions, plans/);
    const againPlanned = await copyStore(sourceConfig, ['--to', postgres.url, '--dry-run']);
    assert.equal(againPlanned.code, 6, againPlanned.stderr);
    assert.match(againPlanned.stderr, /CONFLICT: The target database already holds data/);
    const sessionsAfter = (await readTables({ dataDir: dir, store: { url: postgres.url } })).get('sessions');
    assert.deepEqual(sessionsAfter, sessionsBefore);
  });

  test('a target password given as ?password= in the URL is not printed either', async () => {
    const target = await createTestDatabase({ empty: true });
    try {
      const url = new URL(target.url);
      const password = decodeURIComponent(url.password);
      url.password = '';
      url.searchParams.set('password', password);
      const copied = await copyStore(sourceConfig, ['--to', url.toString()]);
      assert.equal(copied.code, 0, copied.stderr);
      assert.match(copied.stdout, /target\s+postgres/);
      assert.ok(!`${copied.stdout}${copied.stderr}`.includes(password), copied.stdout);
    } finally {
      await target.drop();
    }
  });

  test('refuses a source a server is running on', async () => {
    const server = await startTestServer({ dataDir: sourceDir, config: serverConfig() });
    try {
      const target = join(dir, 'busy', 'maos.db');
      const copied = await copyStore(sourceConfig, ['--to', `sqlite:${target}`]);
      assert.equal(copied.code, 6, copied.stderr);
      assert.match(copied.stderr, /CONFLICT: A MAOS server runs on the source database/);
    } finally {
      await server.close();
    }
  });

  test('holds the server lock of a SQLite target that had no lock file, so no server starts on it meanwhile', async () => {
    // A target migrated by `maos migrate` and never served has no lock file yet.
    const targetDir = join(dir, 'unserved');
    const target = join(targetDir, 'maos.db');
    const migrated = createDatabase(
      configSchema.parse({ dataDir: targetDir, store: { synchronous: 'normal' } }),
    );
    await migrateToLatest(migrated.db);
    await migrated.close();
    assert.equal(existsSync(`${target}.server-lock`), false);
    // A PostgreSQL source, one of whose tables the test locks: the copy waits there, midway.
    const source = await createTestDatabase();
    const locker = new pg.Client({ connectionString: source.url });
    const watcher = new pg.Client({ connectionString: source.url });
    await locker.connect();
    await watcher.connect();
    try {
      await locker.query('begin');
      await locker.query('lock table deleted_sessions in access exclusive mode');
      const config = writeConfig(dir, 'pg-source.json', {
        dataDir: join(dir, 'pg-source'),
        store: { url: source.url, synchronous: 'normal' },
      });
      const copying = copyStore(config, ['--to', `sqlite:${target}`]);
      try {
        for (;;) {
          // Activity statistics are read once per transaction: the locker's would stay as they were.
          const { rows } = await watcher.query(
            "select 1 from pg_stat_activity where application_name = 'maos-store-copy' and wait_event_type = 'Lock'",
          );
          if (rows.length > 0) break;
          assert.equal(
            await Promise.race([copying.then(() => 'ended'), sleep(20)]),
            undefined,
            'the copy ended',
          );
        }
        // A server starting now is refused: the lock is the copy's.
        assert.throws(
          () => acquireServerLock(target),
          (error: unknown) => error instanceof AppError && error.code === 'CONFLICT',
        );
      } finally {
        await locker.query('rollback');
      }
      const copied = await copying;
      assert.equal(copied.code, 0, copied.stderr);
      // Released when the copy ends.
      acquireServerLock(target).release();
    } finally {
      await locker.end();
      await watcher.end();
      await source.drop();
    }
  });

  test('refuses a PostgreSQL source a replica is connected to by its LISTEN connection only', async () => {
    // A replica's pool closes idle connections; its LISTEN connection stays open as long as it runs.
    const source = await createTestDatabase();
    const listening = new pg.Client({
      connectionString: source.url,
      application_name: LISTEN_APPLICATION_NAME,
    });
    await listening.connect();
    try {
      const config = writeConfig(dir, 'listened.json', {
        dataDir: join(dir, 'listened'),
        store: { url: source.url, synchronous: 'normal' },
      });
      const planned = await copyStore(config, ['--to', `sqlite:${join(dir, 'listened.db')}`, '--dry-run']);
      assert.equal(planned.code, 6, planned.stderr);
      assert.match(planned.stderr, /CONFLICT: MAOS replicas are connected to the source database/);
    } finally {
      await listening.end();
      await source.drop();
    }
  });

  test('bad targets are usage errors', async () => {
    // A URL file saved in Latin-1 (`é` as the byte 0xE9): read lossily, it named another file
    // (`copi�.db`), which a copy would have created.
    const latin1 = join(dir, 'latin1-url.txt');
    writeFileSync(latin1, Buffer.from(`sqlite:${join(dir, 'copié.db')}\n`, 'latin1'));
    const cases: [string[], RegExp][] = [
      [[], /the target database is required/],
      [['--to', 'mysql://db/maos'], /--to must start with postgres:\/\/ \(or postgresql:\/\/\) or sqlite:/],
      [['--to', `sqlite:${join(sourceDir, 'maos.db')}`], /--to names the configured database itself/],
      [['--to', 'sqlite:x.db', '--to-file', join(dir, 'url.txt')], /not both/],
      [['--to-file', join(dir, 'missing.txt')], /cannot read --to-file .*missing\.txt \(ENOENT\)/],
      [['--to-file', latin1, '--dry-run'], /--to-file .*latin1-url\.txt is not UTF-8 text/],
      [['--to', `sqlite:${join(dir, 'trailing.db ')}`], /ending in whitespace/],
    ];
    for (const [args, message] of cases) {
      const result = await copyStore(sourceConfig, args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
  });

  test('a dry run into a SQLite file that does not exist creates nothing', async () => {
    const target = join(dir, 'planned', 'maos.db');
    const planned = await copyStore(sourceConfig, ['--to', `sqlite:${target}`, '--dry-run']);
    assert.equal(planned.code, 0, planned.stderr);
    assert.match(planned.stdout, /does not exist yet; the copy creates it/);
    assert.match(planned.stdout, /would copy\s+sessions\s+2/);
    assert.match(
      planned.stdout,
      /dry run: \d+ rows in \d+ tables would be copied after \d+ migration\(s\) of the target; nothing was written/,
    );
    assert.equal(existsSync(join(dir, 'planned')), false);
  });

  test('a dry run into a folder the copy could not create its SQLite target in fails as the copy would', async (t) => {
    // An immutable folder: not even root writes into it (as a read-only volume refuses everyone).
    const locked = join(dir, 'immutable');
    mkdirSync(locked);
    if (spawnSync('chattr', ['+i', locked]).status !== 0) {
      t.skip('needs chattr +i (root, a file system with attributes)');
      return;
    }
    try {
      for (const target of [join(locked, 'maos.db'), join(locked, 'sub', 'maos.db')]) {
        const planned = await copyStore(sourceConfig, ['--to', `sqlite:${target}`, '--dry-run']);
        assert.equal(planned.code, 7, planned.stdout);
        assert.match(
          planned.stderr,
          /error STORE_UNAVAILABLE: The target database .+ cannot be created: .*immutable is not writable \(EPERM\)/,
        );
        assert.doesNotMatch(planned.stdout, /would be copied/);
      }
    } finally {
      spawnSync('chattr', ['-i', locked]);
    }
  });

  test('the target URL can come from a file', async () => {
    const target = join(dir, 'from-file', 'maos.db');
    const urlFile = join(dir, 'target-url.txt');
    writeFileSync(urlFile, `sqlite:${target}\n`);
    const copied = await copyStore(sourceConfig, ['--to-file', urlFile, '--json']);
    assert.equal(copied.code, 0, copied.stderr);
    assert.equal((JSON.parse(copied.stdout) as CopyJson).target, target);
  });

  test('a source with pending migrations is refused; run maos migrate first', async () => {
    const oldDir = join(dir, 'old');
    const handle = createDatabase(configSchema.parse({ dataDir: oldDir, store: { synchronous: 'normal' } }));
    await migrateToLatest(handle.db, MIGRATIONS.slice(0, 4));
    await handle.close();
    const config = writeConfig(dir, 'old.json', { dataDir: oldDir });
    const copied = await copyStore(config, ['--to', `sqlite:${join(dir, 'new.db')}`]);
    assert.equal(copied.code, 7, copied.stderr);
    assert.match(
      copied.stderr,
      /MIGRATION_REQUIRED: .*pending migration\(s\): run `maos migrate` on it first/,
    );
  });

  test('a value PostgreSQL cannot store fails the copy by name, and the target keeps no copied row', async () => {
    const nulDir = join(dir, 'nul');
    const config = writeConfig(dir, 'nul.json', { dataDir: nulDir });
    const created = await runMaos(['keys', 'create', '--config', config, '--role', 'viewer']);
    assert.equal(created.code, 0, created.stderr);
    const sqlite = new SqliteDatabase(join(nulDir, 'maos.db'));
    const key = sqlite.prepare('select id from api_keys').get() as { id: string };
    sqlite.prepare('update api_keys set name = ?').run('nul\u0000inside');
    sqlite.close();
    const target = await createTestDatabase({ empty: true });
    try {
      const copied = await copyStore(config, ['--to', target.url]);
      assert.equal(copied.code, 2, copied.stderr);
      assert.match(
        copied.stderr,
        new RegExp(
          `VALIDATION_FAILED: A row of api_keys \\(id ${key.id}\\) holds a NUL character.*nothing was copied`,
        ),
      );
      const tables = await readTables({ dataDir: dir, store: { url: target.url } });
      // What the migration seeded (the default tenant), nothing more.
      for (const table of COPIED_TABLES) {
        const rows = tables.get(table.name)?.map((row) => row.id);
        assert.deepEqual(rows, table.name === 'tenants' ? ['default'] : [], table.name);
      }
    } finally {
      await target.drop();
    }
  });
});
