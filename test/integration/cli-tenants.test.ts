// `maos tenants purge` on a data directory (SQLite) and on PostgreSQL: the dry run lists what would
// go and changes nothing; without --yes it asks on a terminal (a real pseudo-terminal through
// util-linux `script`) and refuses when stdin is none; with --yes it erases the tenant, removes its
// session workspaces here and writes one audit record (the chain still verifies), keeping the
// tenant row with only its id; unfinished sessions refuse it; another tenant keeps everything.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import { loadConfig } from '../../src/config/load.ts';
import { createDatabase } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { TENANT_TABLES } from '../../src/store/tenant-purge.ts';
import { runMaos } from '../fixtures/cli.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import { seedSessionRows } from '../fixtures/session-rows.ts';
import { countTenantRows, readRowsNotOf, seedTenantRows } from '../fixtures/tenant-rows.ts';
import { waitFor } from '../fixtures/wait-for.ts';

// biome-ignore lint/suspicious/noExplicitAny: reads tables of several areas' schemas
type AnyDb = Kysely<any>;

const BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));
const PURGED = TENANT_TABLES.map((table) => table.name);

/** Runs `fn` on the configured database (migrated). */
async function withStore<T>(configFile: string, fn: (db: AnyDb) => Promise<T>): Promise<T> {
  const handle = createDatabase(loadConfig({ configPath: configFile }));
  try {
    await migrateToLatest(handle.db);
    return await fn(handle.db as AnyDb);
  } finally {
    await handle.close();
  }
}

/** util-linux `script`, which runs a command on a pseudo-terminal; absent on some systems. */
const hasScript = spawnSync('script', ['--version']).status === 0;

/** Runs `maos <args>` on a pseudo-terminal, typing `answer` and Enter. */
function runOnTerminal(
  args: string[],
  answer: string,
  env: Record<string, string>,
): { code: number; output: string } {
  const command = [process.execPath, BIN, ...args].map((word) => `'${word}'`).join(' ');
  try {
    const output = execFileSync('script', ['-qec', command, '/dev/null'], {
      input: `${answer}\n`,
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { code: 0, output };
  } catch (error) {
    const failed = error as { status: number; stdout: string };
    return { code: failed.status, output: failed.stdout };
  }
}

describe('maos tenants purge', { timeout: 240_000 }, () => {
  let dir: string;
  let configFile: string;
  let dataDir: string;
  let acme: string[];
  let globex: string[];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-cli-tenants-'));
    dataDir = join(dir, 'data');
    configFile = join(dir, 'maos.json');
    writeFileSync(configFile, JSON.stringify({ dataDir, store: { synchronous: 'normal' } }));
    await withStore(configFile, async (db) => {
      acme = (await seedTenantRows(db, 'acme')).sessionIds;
      globex = (await seedTenantRows(db, 'globex')).sessionIds;
      await seedTenantRows(db, 'umbrella', { cacheEntries: 1250, name: 'Umbrella Corporation' });
    });
    for (const id of [...acme, ...globex]) {
      mkdirSync(join(dataDir, 'workspaces', id, 'src'), { recursive: true });
      writeFileSync(join(dataDir, 'workspaces', id, 'src', 'notes.md'), 'customer data');
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('--dry-run lists the rows per table and erases nothing', async () => {
    const before = await withStore(configFile, (db) => readRowsNotOf(db, 'nobody'));
    const result = await runMaos(['tenants', 'purge', 'acme', '--dry-run', '-c', configFile]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /tenant acme: would erase/);
    assert.match(result.stdout, /^sessions +2$/m);
    assert.match(result.stdout, /^events +7$/m);
    assert.match(result.stdout, /^api_keys +2$/m);
    assert.match(result.stdout, /^workspaces \(this data directory\) +2$/m);
    assert.match(
      result.stderr,
      /kept: 1 tenants, 1 audit_log, 1 deleted_sessions \(the tenant row keeps only/,
    );
    assert.doesNotMatch(result.stdout, /^tenants /m, 'the tenant row is not in the list of what goes');
    assert.match(result.stderr, /dry run: nothing erased/);
    const json = await runMaos(['tenants', 'purge', 'acme', '--dry-run', '--json', '-c', configFile]);
    const report = JSON.parse(json.stdout) as {
      rows: Record<string, number>;
      workspaces: number;
      tenantName: string | null;
      kept: Record<string, number>;
    };
    assert.deepEqual(Object.keys(report.rows).sort(), [...PURGED].sort());
    assert.equal(report.workspaces, 2);
    assert.equal(report.tenantName, null, 'its name is its id: nothing to erase there');
    assert.equal(report.kept.tenants, 1);
    assert.deepEqual(await withStore(configFile, (db) => readRowsNotOf(db, 'nobody')), before);
  });

  test('without --yes: refused when stdin is not a terminal, asked on one', async () => {
    const before = await withStore(configFile, (db) => readRowsNotOf(db, 'nobody'));
    const piped = await runMaos(['tenants', 'purge', 'acme', '-c', configFile], { input: 'acme\n' });
    assert.equal(piped.code, 2);
    assert.match(piped.stderr, /refusing to erase tenant acme without --yes: stdin is not a terminal/);
    assert.deepEqual(await withStore(configFile, (db) => readRowsNotOf(db, 'nobody')), before);
    if (!hasScript) return;
    const declined = runOnTerminal(['tenants', 'purge', 'acme', '-c', configFile], 'yes', {});
    assert.equal(declined.code, 2, declined.output);
    assert.match(declined.output, /Type the tenant id \(acme\) to confirm/);
    assert.match(declined.output, /not confirmed: nothing of tenant acme was erased/);
    assert.deepEqual(await withStore(configFile, (db) => readRowsNotOf(db, 'nobody')), before);
  });

  test('a tenant with an unfinished session is refused, naming it', async () => {
    await withStore(configFile, (db) =>
      seedSessionRows(db, {
        id: 'globex-planning',
        tenantId: 'globex',
        status: 'planning',
        finishedAt: null,
      }),
    );
    const result = await runMaos(['tenants', 'purge', 'globex', '--yes', '-c', configFile]);
    assert.equal(result.code, 6, result.stderr);
    assert.match(
      result.stderr,
      /error INVALID_STATE: tenant globex has 1 session\(s\) that have not finished \(1 planning\): cancel them first/,
    );
    assert.match(result.stderr, /unfinished: globex-planning/);
    const dry = await runMaos(['tenants', 'purge', 'globex', '--dry-run', '-c', configFile]);
    assert.equal(dry.code, 6, 'the dry run says the purge would be refused');
    assert.equal((await withStore(configFile, (db) => countTenantRows(db, 'globex'))).sessions, 3);
  });

  test('confirmed: the tenant is erased with its workspaces, audited; another tenant keeps everything', async () => {
    const others = await withStore(configFile, (db) => readRowsNotOf(db, 'acme'));
    const confirmed = hasScript
      ? runOnTerminal(['tenants', 'purge', 'acme', '-c', configFile], 'acme', {})
      : { code: -1, output: '' };
    const result = hasScript
      ? { code: confirmed.code, stdout: confirmed.output, stderr: confirmed.output }
      : await runMaos(['tenants', 'purge', 'acme', '--yes', '-c', configFile]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      new RegExp(`erased tenant acme: \\d+ row\\(s\\) in ${PURGED.length} table\\(s\\), 2 workspace\\(s\\)`),
    );
    // What stays: the tenant's audit record and the purge's two, and the ids of its 2 sessions.
    assert.match(
      result.stderr,
      /kept: 1 tenants, 3 audit_log, 3 deleted_sessions \(the tenant row keeps only the id and creation time; the audit log is never erased/,
    );
    const counts = await withStore(configFile, (db) => countTenantRows(db, 'acme'));
    for (const table of PURGED) assert.equal(counts[table], 0, `${table} has no acme rows left`);
    assert.deepEqual(await withStore(configFile, (db) => readRowsNotOf(db, 'acme')), others);
    for (const id of acme)
      assert.equal(existsSync(join(dataDir, 'workspaces', id)), false, `workspace ${id} removed`);
    for (const id of globex) assert.ok(existsSync(join(dataDir, 'workspaces', id)), `workspace ${id} kept`);

    const exported = await runMaos(['audit', 'export', '--tenant', 'acme', '-c', configFile]);
    const records = exported.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const purge = records.at(-1) as {
      action: string;
      outcome: string;
      reason: string;
      actor: { id: string; auth_method: string };
      target: unknown;
    };
    assert.equal(records.length, 3, 'the tenant’s records stay, with the purge’s');
    // Written before anything was erased, with what was about to go.
    const started = records.at(-2) as { action: string; outcome: string; reason: string };
    assert.equal(started.action, 'tenants:purge');
    assert.equal(started.outcome, 'unknown');
    assert.match(
      started.reason,
      /^started: erasing 2 sessions, 7 events, .*2 api_keys, 1 tenant_usage_days; 2 workspace\(s\) here$/,
    );
    assert.equal(purge.action, 'tenants:purge');
    assert.equal(purge.outcome, 'success');
    assert.match(purge.actor.id, /^cli:/);
    assert.equal(purge.actor.auth_method, 'local');
    assert.deepEqual(purge.target, { type: 'tenant', id: 'acme', tenant: 'acme' });
    assert.match(
      purge.reason,
      /^erased 2 sessions, 7 events, .*2 api_keys, 1 tenant_usage_days; 2 workspace\(s\) removed here$/,
    );
    const verified = await runMaos(['audit', 'verify', '--json', '-c', configFile]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);

    const again = await runMaos(['tenants', 'purge', 'acme', '--yes', '-c', configFile]);
    assert.equal(again.code, 4, again.stderr);
    assert.match(again.stderr, /tenant acme has no data in .*: nothing to erase/);
  });

  test('a purge stopped by a database error is audited as such, and a second run finishes it', async () => {
    const dry = await runMaos(['tenants', 'purge', 'umbrella', '--dry-run', '-c', configFile]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^and the tenant row's name "Umbrella Corporation" \(set to the id\)$/m);
    // Custom roles are erased after the sessions: the failure stops the purge midway.
    await withStore(configFile, (db) =>
      sql`create trigger test_refuse_delete before delete on custom_roles begin select raise(abort, 'disk went away'); end`.execute(
        db,
      ),
    );
    const stopped = await runMaos(['tenants', 'purge', 'umbrella', '--yes', '-c', configFile]);
    await withStore(configFile, (db) => sql`drop trigger test_refuse_delete`.execute(db));
    assert.equal(stopped.code, 7, stopped.stderr);
    assert.match(stopped.stderr, /disk went away/);
    const midway = await withStore(configFile, (db) => countTenantRows(db, 'umbrella'));
    assert.equal(midway.sessions, 0);
    assert.ok(midway.custom_roles! > 0);

    const finished = await runMaos(['tenants', 'purge', 'umbrella', '--yes', '-c', configFile]);
    assert.equal(finished.code, 0, finished.stderr);
    const counts = await withStore(configFile, (db) => countTenantRows(db, 'umbrella'));
    for (const table of PURGED) assert.equal(counts[table], 0, `${table} has no umbrella rows left`);
    const exported = await runMaos(['audit', 'export', '--tenant', 'umbrella', '-c', configFile]);
    const purges = exported.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { action: string; outcome: string; reason: string })
      .filter((record) => record.action === 'tenants:purge');
    assert.deepEqual(
      purges.map((record) => record.outcome),
      ['unknown', 'failure', 'unknown', 'success'],
    );
    assert.match(purges[0]!.reason, /^started: erasing 2 sessions, .*; tenant name to be set to its id$/);
    assert.match(
      purges[1]!.reason,
      /^stopped after erasing 2 sessions, .* \(2 API key\(s\) revoked\): .*disk went away/,
    );
    assert.match(
      purges[3]!.reason,
      /^erased 1 custom_roles, 1 role_bindings, 2 api_keys, 1 tenant_usage_days; 0 workspace\(s\) removed here; tenant name set to its id$/,
    );
    assert.deepEqual(
      await withStore(configFile, (db) =>
        db.selectFrom('tenants').select(['id', 'name']).where('id', '=', 'umbrella').execute(),
      ),
      [{ id: 'umbrella', name: 'umbrella' }],
    );
    const verified = await runMaos(['audit', 'verify', '--json', '-c', configFile]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  });
});

describe('maos tenants purge on PostgreSQL', { timeout: 240_000 }, () => {
  let dir: string;
  let database: TestDatabase;
  let configFile: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-cli-tenants-pg-'));
    database = await createTestDatabase();
    configFile = join(dir, 'maos.json');
    writeFileSync(configFile, JSON.stringify({ dataDir: join(dir, 'data'), store: { url: database.url } }));
  });
  after(async () => {
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('--yes erases the tenant and nothing of another', async () => {
    await withStore(configFile, async (db) => {
      await seedTenantRows(db, 'acme', { events: 30, cacheEntries: 1250 });
      await seedTenantRows(db, 'globex');
    });
    const others = await withStore(configFile, (db) => readRowsNotOf(db, 'acme'));
    const result = await runMaos(['tenants', 'purge', 'acme', '--yes', '--json', '-c', configFile]);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as {
      deleted: Record<string, number>;
      apiKeysRevoked: number;
      tenantNameReset: boolean;
      kept: Record<string, number>;
    };
    assert.equal(report.deleted.events, 32);
    assert.equal(report.deleted.tenants, undefined);
    assert.equal(report.tenantNameReset, false);
    assert.equal(report.kept.tenants, 1, 'the tenant row is kept');
    assert.equal(report.deleted.llm_response_cache, 1250, 'in two batches, each in chunks');
    assert.equal(report.apiKeysRevoked, 2);
    const counts = await withStore(configFile, (db) => countTenantRows(db, 'acme'));
    for (const table of PURGED) assert.equal(counts[table], 0, `${table} has no acme rows left`);
    assert.deepEqual(await withStore(configFile, (db) => readRowsNotOf(db, 'acme')), others);
  });

  test('a purge killed midway has left its first audit record; a second run finishes and records it', async () => {
    await withStore(configFile, (db) => seedTenantRows(db, 'initech'));
    // The purge stops at the first session it locks, after it revoked the keys: killed there, it
    // writes nothing more.
    const holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query(`select id from sessions where tenant_id = 'initech' for update`);
      const child = spawn(process.execPath, [BIN, 'tenants', 'purge', 'initech', '--yes', '-c', configFile], {
        stdio: 'ignore',
      });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      // Asked outside the holder's transaction, which sees one snapshot of the activity. Only a
      // wait on the holder's rows counts: a wait on an advisory lock (a store opening beside the
      // purge, this poll's own) comes before the purge's first audit record.
      await waitFor(
        () =>
          withStore(configFile, async (db) => {
            const { rows } = await sql`select 1 from pg_stat_activity
              where datname = current_database() and wait_event_type = 'Lock'
                and wait_event in ('transactionid', 'tuple')`.execute(db);
            return rows.length > 0;
          }),
        60_000,
        'the purge waiting for a session it deletes',
      );
      child.kill('SIGKILL');
      await exited;
    } finally {
      await holder.query('rollback');
      await holder.end();
    }
    const purges = async () => {
      const exported = await runMaos(['audit', 'export', '--tenant', 'initech', '-c', configFile]);
      return exported.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { action: string; outcome: string; reason: string })
        .filter((record) => record.action === 'tenants:purge');
    };
    const killed = await purges();
    assert.deepEqual(
      killed.map((record) => record.outcome),
      ['unknown'],
    );
    assert.match(killed[0]!.reason, /^started: erasing 2 sessions, .*; 0 workspace\(s\) here$/);

    const finished = await runMaos(['tenants', 'purge', 'initech', '--yes', '-c', configFile]);
    assert.equal(finished.code, 0, finished.stderr);
    assert.deepEqual(
      (await purges()).map((record) => record.outcome),
      ['unknown', 'unknown', 'success'],
    );
  });
});
