// `maos tenants export` on a data directory (SQLite) and on PostgreSQL: the tar (extracted with the
// system tar) holds one NDJSON file per table with exactly the tenant's rows, read in pages, its
// audit records and a manifest whose counts and sha256 match; no secret (API key, its hash, an
// encrypted credential) is in it; every column that may hold a secret is decided (a new one fails);
// an unknown tenant, an existing file and an unwritable directory are refused with clear errors.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type CompiledQuery, type Kysely, type KyselyPlugin, sql } from 'kysely';
import { loadConfig } from '../../src/config/load.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { createDatabase } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import {
  columnDecision,
  EXPORT_TABLES,
  type ExportTable,
  readTenantRows,
  SECRET_COLUMNS,
  TENANT_EXPORT_FORMAT_VERSION,
} from '../../src/store/tenant-export.ts';
import { VERSION } from '../../src/version.ts';
import { runMaos } from '../fixtures/cli.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import { requestJson, startTestServer } from '../fixtures/server.ts';
import { seedSessionRows } from '../fixtures/session-rows.ts';
import { ALL_TENANT_TABLES, countTenantRows, seedTenantRows } from '../fixtures/tenant-rows.ts';

// biome-ignore lint/suspicious/noExplicitAny: reads tables of several areas' schemas
type AnyDb = Kysely<any>;
type Row = Record<string, unknown>;

async function withStore<T>(configFile: string, fn: (db: AnyDb) => Promise<T>): Promise<T> {
  const handle = createDatabase(loadConfig({ configPath: configFile }));
  try {
    await migrateToLatest(handle.db);
    return await fn(handle.db as AnyDb);
  } finally {
    await handle.close();
  }
}

/** Every column of every exported table, from the database's catalogue. */
async function exportedColumns(db: AnyDb, postgres: boolean): Promise<Array<[string, string]>> {
  const columns: Array<[string, string]> = [];
  for (const { name } of EXPORT_TABLES) {
    const { rows } = postgres
      ? await sql<{ name: string }>`select column_name as name from information_schema.columns
          where table_schema = current_schema() and table_name = ${name}`.execute(db)
      : await sql<{ name: string }>`select name from pragma_table_info(${name})`.execute(db);
    assert.ok(rows.length > 0, `${name} has columns`);
    for (const row of rows) columns.push([name, row.name]);
  }
  return columns;
}

/** Columns that may hold a secret and that nobody decided on. */
function undecided(columns: Array<[string, string]>): string[] {
  return columns
    .filter(([table, column]) => columnDecision(table, column) === 'undecided')
    .map((c) => c.join('.'));
}

/** The rows the export must hold for `tenant`, from the store (secret columns left out). */
async function expectedRows(db: AnyDb, tenant: string): Promise<Record<string, Row[]>> {
  const rows: Record<string, Row[]> = {};
  for (const table of EXPORT_TABLES) {
    rows[table.name] = [];
    for await (const page of readTenantRows(db, table, tenant, 1_000_000)) rows[table.name]!.push(...page);
  }
  return rows;
}

function sorted(rows: Row[]): string[] {
  return rows.map((row) => JSON.stringify(row, Object.keys(row).sort())).sort();
}

/** Extracts the tar with the system tar; the files it holds by name. */
function extract(archive: string): Map<string, Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'maos-tenant-export-x-'));
  try {
    const result = spawnSync('tar', ['-xf', archive], { cwd: dir, encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    return new Map(readdirSync(dir).map((name) => [name, readFileSync(join(dir, name))]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Manifest {
  format: string;
  formatVersion: number;
  maosVersion: string;
  tenant: string;
  createdAt: string;
  omittedColumns: Record<string, string[]>;
  files: Array<{ name: string; rows: number; bytes: number; sha256: string }>;
}

/** Runs the export of acme against `configFile` and checks the archive against the store. */
async function checkExport(configFile: string, dir: string): Promise<void> {
  const secrets = await withStore(configFile, async (db) => {
    const { key } = await createApiKey(db as unknown as SecurityDb, {
      tenantId: 'acme',
      name: 'export-probe',
      roles: ['admin'],
      createdBy: 'cli:test',
    });
    const hashes = (
      await db.selectFrom('api_keys').select('hash').where('tenant_id', '=', 'acme').execute()
    ).map((row) => row.hash as string);
    const ciphertexts = (
      await db.selectFrom('tenant_secrets').select('ciphertext').where('tenant_id', '=', 'acme').execute()
    ).map((row) => row.ciphertext as string);
    return [key, ...hashes, ...ciphertexts];
  });
  assert.ok(secrets.length >= 6);
  const output = join(dir, 'acme.tar');
  const result = await runMaos(['tenants', 'export', 'acme', '--output', output, '--json', '-c', configFile]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(statSync(output).mode & 0o777, 0o600);
  assert.deepEqual(
    readdirSync(dir).filter((name) => name.endsWith('.tmp')),
    [],
    'no temporary file left',
  );

  const archive = readFileSync(output);
  for (const secret of secrets) {
    assert.equal(archive.includes(secret), false, `the archive holds no secret (${secret.slice(0, 12)}…)`);
  }
  const files = extract(output);
  const names = EXPORT_TABLES.map((table) => `${table.name}.ndjson`);
  assert.deepEqual([...files.keys()].sort(), [...names, 'manifest.json'].sort());
  assert.deepEqual(
    EXPORT_TABLES.map((table) => table.name).sort(),
    [...ALL_TENANT_TABLES].sort(),
    'every table the purge erases or keeps',
  );

  const manifest = JSON.parse(files.get('manifest.json')!.toString('utf8')) as Manifest;
  assert.equal(manifest.format, 'maos-tenant-export');
  assert.equal(manifest.formatVersion, TENANT_EXPORT_FORMAT_VERSION);
  assert.equal(manifest.maosVersion, VERSION);
  assert.equal(manifest.tenant, 'acme');
  assert.ok(Date.parse(manifest.createdAt) > 0);
  assert.deepEqual(manifest.omittedColumns, SECRET_COLUMNS);
  assert.deepEqual(
    manifest.files.map((file) => file.name),
    names,
  );
  const expected = await withStore(configFile, (db) => expectedRows(db, 'acme'));
  const counts = await withStore(configFile, (db) => countTenantRows(db, 'acme'));
  for (const entry of manifest.files) {
    const content = files.get(entry.name)!;
    assert.equal(entry.bytes, content.length, `${entry.name}: size`);
    assert.equal(entry.sha256, createHash('sha256').update(content).digest('hex'), `${entry.name}: sha256`);
    const lines = content.toString('utf8').split('\n').filter(Boolean);
    assert.equal(entry.rows, lines.length, `${entry.name}: rows`);
    const table = entry.name.replace(/\.ndjson$/, '');
    const rows = lines.map((line) => JSON.parse(line) as Row);
    // The audit log gains the export's own record after the archive is written.
    if (table !== 'audit_log') assert.equal(rows.length, counts[table], `${table}: every row of acme`);
    assert.ok(rows.length > 0, `${table} has rows of acme`);
    if (table === 'audit_log') {
      assert.deepEqual(sorted(rows), sorted(expected[table]!.slice(0, rows.length)));
      for (const record of rows) {
        const actor = record.actor as { tenant?: string } | null;
        const target = record.target as { tenant?: string } | null;
        assert.equal(actor?.tenant ?? target?.tenant, 'acme', 'a record of acme (actor, else target)');
        assert.equal(typeof record.hash, 'string');
      }
      continue;
    }
    assert.deepEqual(sorted(rows), sorted(expected[table]!), `${table}: exactly acme's rows`);
    const column = table === 'tenants' ? 'id' : 'tenant_id';
    for (const row of rows) assert.equal(row[column], 'acme', `${table}: no row of another tenant`);
    for (const secret of SECRET_COLUMNS[table] ?? []) {
      for (const row of rows) assert.equal(Object.hasOwn(row, secret), false, `${table}.${secret} left out`);
    }
  }
  const report = JSON.parse(result.stdout) as { rows: number; files: Array<{ name: string }> };
  assert.equal(report.files.length, names.length + 1);

  // The audit record of the export, under the tenant.
  const audit = await runMaos(['audit', 'export', '--tenant', 'acme', '-c', configFile]);
  const exports = audit.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { action: string; outcome: string; reason: string })
    .filter((record) => record.action === 'tenants:export');
  assert.equal(exports.length, 1);
  assert.equal(exports[0]!.outcome, 'success');
  assert.match(
    exports[0]!.reason,
    /^exported \d+ row\(s\) in \d+ file\(s\) to .*acme\.tar \(manifest sha256 [0-9a-f]{64}\)$/,
  );
}

/** The tenant whose rows share the first column of their table's order (checkPagesWithTies). */
const TIES = 'ties';

/**
 * Rows of TIES that share the first column of their table's order, more of them than pages of two
 * hold: seven sessions created in the same millisecond (with their events, plans and task
 * dependencies: several rows per session), five webhooks created at once, five roles of one
 * principal.
 */
async function seedTies(db: AnyDb): Promise<void> {
  const finishedAt = Date.UTC(2026, 0, 1);
  await db.insertInto('tenants').values({ id: TIES, name: TIES, created_at: finishedAt }).execute();
  // Ids out of the order they are written in.
  for (const n of [4, 1, 6, 0, 3, 5, 2]) {
    await seedSessionRows(db, {
      id: `ties-${n}`,
      tenantId: TIES,
      status: 'completed',
      finishedAt,
      events: 3,
    });
  }
  await db
    .insertInto('webhooks')
    .values(
      [3, 0, 4, 1, 2].map((n) => ({
        id: `ties-webhook-${n}`,
        tenant_id: TIES,
        url: 'https://hooks.example.com/maos',
        events: '["session.completed"]',
        created_at: finishedAt,
        created_by: 'key:x',
      })),
    )
    .execute();
  await db
    .insertInto('role_bindings')
    .values(
      ['viewer', 'operator', 'auditor', 'admin', 'approver'].map((role) => ({
        tenant_id: TIES,
        principal_id: 'bob@example.com',
        role,
        created_at: new Date(finishedAt).toISOString(),
        created_by: 'key:x',
      })),
    )
    .execute();
}

/**
 * TIES's rows of every table read in pages of two: each row once, the same rows in the same order as
 * in one read, as many as the table holds; the tied rows span several pages.
 */
async function checkPagesWithTies(db: AnyDb): Promise<void> {
  const counts = await countTenantRows(db, TIES);
  const pagesOf: Record<string, Row[][]> = {};
  for (const table of EXPORT_TABLES) {
    const pages: Row[][] = [];
    for await (const page of readTenantRows(db, table, TIES, 2)) pages.push(page);
    const rows = pages.flat();
    const once: Row[] = [];
    for await (const page of readTenantRows(db, table, TIES, 1_000_000)) once.push(...page);
    const lines = rows.map((row) => JSON.stringify(row));
    assert.equal(new Set(lines).size, lines.length, `${table.name}: no row twice`);
    assert.deepEqual(rows, once, `${table.name}: the rows of one read, in its order`);
    assert.equal(rows.length, counts[table.name], `${table.name}: every row of ${TIES}`);
    pagesOf[table.name] = pages;
  }
  const tied = (table: string, column: string, rows: number) => {
    const pages = pagesOf[table]!;
    const values = new Set(pages.flat().map((row) => row[column]));
    assert.equal(values.size, 1, `${table}: one ${column} for all`);
    assert.equal(pages.flat().length, rows, `${table}: ${rows} rows`);
    assert.ok(pages.length >= 3, `${table}: ${pages.length} pages`);
  };
  tied('sessions', 'created_at', 7);
  tied('webhooks', 'created_at', 5);
  tied('role_bindings', 'principal_id', 5);
  // Three events per session: pages end inside a session.
  assert.equal(pagesOf.events!.flat().length, 21);
}

/**
 * Exported tables with an index (not partial) led by their tenant column, from the catalogue. A
 * planner reads a page through it, so the page must be a range of it (ExportTable.byTenant), else it
 * reads all of the tenant's rows to sort them.
 */
async function tenantIndexedTables(db: AnyDb, postgres: boolean): Promise<string[]> {
  const indexed: string[] = [];
  for (const table of EXPORT_TABLES) {
    const { rows } = postgres
      ? await sql<{ first: string }>`
          select a.attname as first from pg_index i
          join pg_class t on t.oid = i.indrelid
          join pg_namespace n on n.oid = t.relnamespace
          join pg_attribute a on a.attrelid = t.oid and a.attnum = i.indkey[0]
          where n.nspname = current_schema() and t.relname = ${table.name} and i.indpred is null`.execute(db)
      : await sql<{ first: string }>`
          select (select ii.name from pragma_index_info(il.name) as ii where ii.seqno = 0) as first
          from pragma_index_list(${table.name}) as il where il.partial = 0`.execute(db);
    if (rows.some((row) => row.first === table.tenantColumn)) indexed.push(table.name);
  }
  return indexed;
}

/** The statements of reading acme's rows of every table in pages of two, with their tables. */
async function recordPages(
  configFile: string,
): Promise<Array<{ table: ExportTable; statement: CompiledQuery }>> {
  return withStore(configFile, async (db) => {
    const statements: Array<{ table: ExportTable; statement: CompiledQuery }> = [];
    for (const table of EXPORT_TABLES) {
      const recorder: KyselyPlugin = {
        transformQuery: ({ node, queryId }) => {
          statements.push({ table, statement: db.getExecutor().compileQuery(node, queryId) });
          return node;
        },
        transformResult: async ({ result }) => result,
      };
      for await (const _ of readTenantRows(db.withPlugin(recorder), table, 'acme', 2)) {
        // Pages of two rows: the second page and on start after the last row read.
      }
    }
    return statements;
  });
}

/** Tenant acme, to export, and globex, whose rows must stay out; and TIES (seedTies). */
async function seedTwoTenants(db: AnyDb): Promise<void> {
  // More rows than a page (EXPORT_ROWS_PER_READ) in the events, cache and usage tables.
  await seedTenantRows(db, 'acme', { events: 1210, cacheEntries: 1210, usageDays: 3, name: 'Acme Corp.' });
  await seedTenantRows(db, 'globex', { events: 40, cacheEntries: 30 });
  // A running session is exported as it is.
  await seedSessionRows(db, {
    id: 'acme-running',
    tenantId: 'acme',
    status: 'running',
    finishedAt: null,
    events: 3,
  });
  await seedTies(db);
}

describe('maos tenants export: SQLite', { timeout: 240_000 }, () => {
  let dir: string;
  let configFile: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-tenant-export-'));
    configFile = join(dir, 'maos.json');
    writeFileSync(
      configFile,
      JSON.stringify({ dataDir: join(dir, 'data'), store: { synchronous: 'normal' } }),
    );
    await withStore(configFile, seedTwoTenants);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('every column that may hold a secret is decided; a new one fails this test', async () => {
    const columns = await withStore(configFile, (db) => exportedColumns(db, false));
    assert.deepEqual(undecided(columns), []);
    // A signing secret added to a table in a later migration, not yet decided on: caught.
    assert.deepEqual(undecided([...columns, ['webhooks', 'signing_secret']]), ['webhooks.signing_secret']);
    for (const [table, secret] of Object.entries(SECRET_COLUMNS)) {
      for (const column of secret) {
        assert.ok(
          columns.some(([t, c]) => t === table && c === column),
          `${table}.${column} is a column`,
        );
      }
    }
  });

  test("the archive holds exactly acme's rows, no secret, a manifest that matches", async () => {
    await checkExport(configFile, mkdtempSync(join(dir, 'out-')));
  });

  test('no page reads a table in full or sorts it: each is one range of an index, after the last row read', async () => {
    const statements = await recordPages(configFile);
    await withStore(configFile, async (db) => {
      const indexed = await tenantIndexedTables(db, false);
      assert.deepEqual(
        EXPORT_TABLES.filter((table) => table.byTenant).map((table) => table.name),
        indexed,
        'the tables read by a tenant index are those that have one',
      );
      const problems: string[] = [];
      for (const { table, statement } of statements) {
        const plan = await db.executeQuery<{ detail: string }>({
          ...statement,
          sql: `explain query plan ${statement.sql}`,
        });
        const details = plan.rows.map((row) => row.detail);
        // Sorting the page's rows means reading all of the tenant's (or the table's) first.
        if (details.some((detail) => detail.includes('TEMP B-TREE'))) {
          problems.push(`${table.name} sorts: ${details.join('; ')}`);
        }
        const bounded = statement.sql.includes(') > (');
        if (!bounded) continue;
        if (indexed.includes(table.name)) {
          // The tenant and the row after the last one read, both in the index's range.
          const range = new RegExp(
            `^SEARCH ${table.name} USING (COVERING )?INDEX \\S+ \\(${table.tenantColumn}=\\? AND `,
          );
          if (!details.some((detail) => range.test(detail))) {
            problems.push(`${table.name} is no range of a tenant index: ${details.join('; ')}`);
          }
        } else if (details.some((detail) => /^SCAN /.test(detail))) {
          // The first page of a table without a tenant index walks its primary key until it has its
          // rows, as the purge's reads do; every later one starts where the previous one ended.
          problems.push(`${table.name} scans: ${details.join('; ')}`);
        }
      }
      const bounded = statements.filter(({ statement }) => statement.sql.includes(') > ('));
      assert.ok(bounded.length > EXPORT_TABLES.length, `${bounded.length} bounded pages`);
      assert.deepEqual(problems, []);
    });
  });

  test('pages cross rows that share the first column of their order: each row once', async () => {
    await withStore(configFile, (db) => checkPagesWithTies(db));
  });

  test("the columns of every table's order are never null (a null would end its pages early)", async () => {
    await withStore(configFile, async (db) => {
      const nullable: string[] = [];
      for (const table of EXPORT_TABLES) {
        const { rows } = await sql<{ name: string; notnull: number; pk: number }>`
          select name, "notnull", pk from pragma_table_info(${table.name})`.execute(db);
        for (const column of table.order) {
          const info = rows.find((row) => row.name === column);
          // A primary key column: not null on PostgreSQL, and every writer sets it on SQLite.
          if (info?.notnull !== 1 && !(info && info.pk > 0)) nullable.push(`${table.name}.${column}`);
        }
      }
      assert.deepEqual(nullable, []);
    });
  });

  test('a column that may hold a secret and is undecided stops the export, no file written', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'maos-tenant-export-secret-'));
    try {
      const config = join(scratch, 'maos.json');
      writeFileSync(
        config,
        JSON.stringify({ dataDir: join(scratch, 'data'), store: { synchronous: 'normal' } }),
      );
      await withStore(config, async (db) => {
        await seedTenantRows(db, 'acme');
        await sql`alter table webhooks add column signing_secret text`.execute(db);
        await sql`update webhooks set signing_secret = 'whsec_plain'`.execute(db);
      });
      const output = join(scratch, 'acme.tar');
      const result = await runMaos(['tenants', 'export', 'acme', '-o', output, '-c', config]);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /webhooks\.signing_secret may hold a secret/);
      assert.deepEqual(
        readdirSync(scratch).filter((name) => name.includes('acme.tar')),
        [],
      );
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  test('an audit record damaged by an edit of the database is exported marked, named, exit 1; the rest exported', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'maos-tenant-export-damaged-'));
    try {
      const config = join(scratch, 'maos.json');
      writeFileSync(
        config,
        JSON.stringify({ dataDir: join(scratch, 'data'), store: { synchronous: 'normal' } }),
      );
      await withStore(config, async (db) => {
        await seedTenantRows(db, 'acme');
        await seedTenantRows(db, 'globex');
      });
      for (const tenant of ['acme', 'acme']) {
        const created = await runMaos([
          'keys',
          'create',
          '--role',
          'viewer',
          '--tenant',
          tenant,
          '-c',
          config,
        ]);
        assert.equal(created.code, 0, created.stderr);
      }
      // The second of acme's records cut short by an edit (its target type index reads the JSON:
      // dropped too), the log's update guard dropped for the edit.
      const { damaged, stored } = await withStore(config, async (db) => {
        const acme = await db
          .selectFrom('audit_log')
          .select(['seq', 'event'])
          .where('tenant_id', '=', 'acme')
          .orderBy('seq')
          .execute();
        assert.ok(acme.length >= 3, 'acme has records before and after the damaged one');
        const seq = Number(acme[1]!.seq);
        await sql`DROP TRIGGER audit_log_no_update`.execute(db);
        await sql`DROP INDEX audit_log_tenant_target_type_idx`.execute(db);
        await sql`UPDATE audit_log SET event = substr(event, 1, 40) WHERE seq = ${seq}`.execute(db);
        return { damaged: seq, stored: acme.map((row) => Number(row.seq)) };
      });
      const counts = await withStore(config, (db) => countTenantRows(db, 'acme'));
      const output = join(scratch, 'acme.tar');
      // It stopped as an INTERNAL error quoting JSON.parse (exit 7), no archive written.
      const result = await runMaos(['tenants', 'export', 'acme', '-o', output, '--json', '-c', config]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(
          `error: 1 audit record\\(s\\) of the tenant could not be read as records \\(seq ${damaged}\\)`,
        ),
      );
      const report = JSON.parse(result.stdout) as { unreadableAuditRecords: number[] };
      assert.deepEqual(report.unreadableAuditRecords, [damaged]);
      assert.equal(statSync(output).mode & 0o777, 0o600);
      const files = extract(output);
      const manifest = JSON.parse(files.get('manifest.json')!.toString('utf8')) as Manifest;
      for (const entry of manifest.files) {
        const content = files.get(entry.name)!;
        assert.equal(
          entry.sha256,
          createHash('sha256').update(content).digest('hex'),
          `${entry.name}: sha256`,
        );
        const rows = content.toString('utf8').split('\n').filter(Boolean);
        assert.equal(entry.rows, rows.length, `${entry.name}: rows`);
        const table = entry.name.replace(/\.ndjson$/, '');
        assert.equal(rows.length, counts[table], `${table}: every row of acme`);
      }
      const audit = files
        .get('audit_log.ndjson')!
        .toString('utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { seq: number; action?: string; unreadable_event?: string });
      assert.deepEqual(
        audit.map((record) => record.seq),
        stored,
      );
      for (const record of audit) {
        if (record.seq === damaged) {
          assert.equal(record.unreadable_event?.length, 40, 'the stored text, marked');
          assert.equal(record.action, undefined);
        } else {
          assert.equal(record.unreadable_event, undefined);
          assert.equal(typeof record.action, 'string');
        }
      }
      // The export's own record says so.
      const exports = await withStore(config, async (db) =>
        (await db.selectFrom('audit_log').select('event').where('tenant_id', '=', 'acme').execute())
          .map((row) => String(row.event))
          .filter((event) => event.includes('"tenants:export"')),
      );
      assert.equal(exports.length, 1);
      assert.match(exports[0]!, new RegExp(`1 audit record\\(s\\) unreadable \\(seq ${damaged}\\)`));
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  test('bad input: an unknown tenant, an existing file (unless --force), an unwritable directory', async () => {
    const out = mkdtempSync(join(dir, 'bad-'));
    const unknown = await runMaos([
      'tenants',
      'export',
      'nobody',
      '-o',
      join(out, 'x.tar'),
      '-c',
      configFile,
    ]);
    assert.equal(unknown.code, 4, unknown.stderr);
    assert.match(unknown.stderr, /no tenant nobody in .*: nothing to export/);
    assert.deepEqual(readdirSync(out), [], 'nothing written');

    const existing = join(out, 'existing.tar');
    writeFileSync(existing, 'keep me');
    const refused = await runMaos(['tenants', 'export', 'acme', '-o', existing, '-c', configFile]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(
      refused.stderr,
      /--output .*existing\.tar exists: choose another file, or replace it with --force/,
    );
    assert.equal(readFileSync(existing, 'utf8'), 'keep me');
    const forced = await runMaos(['tenants', 'export', 'acme', '-o', existing, '--force', '-c', configFile]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.ok(extract(existing).has('manifest.json'));

    const locked = join(out, 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o500);
    try {
      const denied = await runMaos([
        'tenants',
        'export',
        'acme',
        '-o',
        join(locked, 'a.tar'),
        '-c',
        configFile,
      ]);
      if (process.getuid?.() === 0) {
        // root writes anywhere: nothing to refuse.
        assert.equal(denied.code, 0, denied.stderr);
      } else {
        assert.equal(denied.code, 2, denied.stderr);
        assert.match(denied.stderr, /cannot write --output .*a\.tar \(EACCES in .*locked\)/);
      }
    } finally {
      chmodSync(locked, 0o700);
    }
    const missing = await runMaos([
      'tenants',
      'export',
      'acme',
      '-o',
      join(out, 'no', 'dir', 'a.tar'),
      '-c',
      configFile,
    ]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /cannot write --output .*a\.tar \(ENOENT in /);
    // A path under a file: unwritable for root too.
    const underFile = await runMaos([
      'tenants',
      'export',
      'acme',
      '-o',
      join(existing, 'a.tar'),
      '-c',
      configFile,
    ]);
    assert.equal(underFile.code, 2, underFile.stderr);
    assert.match(underFile.stderr, /cannot write --output .*existing\.tar\/a\.tar \(ENOTDIR in /);
    const noOutput = await runMaos(['tenants', 'export', 'acme', '-c', configFile]);
    assert.equal(noOutput.code, 2);
    assert.match(noOutput.stderr, /--output <file>/);
  });

  test('--force never replaces the database it reads, nor a file SQLite keeps beside it', async () => {
    // `-o <dataDir>/maos.db --force` replaced the whole installation's database with the archive
    // (exit 0); a `-wal` or `-journal` name would be taken by SQLite for its own at the next open.
    const data = join(dir, 'data');
    const database = join(data, 'maos.db');
    const before = await withStore(configFile, (db) => expectedRows(db, 'acme'));
    const linked = join(dir, 'linked-data');
    symlinkSync(data, linked);
    for (const output of [
      database,
      join(data, '..', 'data', 'maos.db'),
      join(linked, 'maos.db'),
      `${database}-wal`,
      `${database}-journal`,
      `${database}.server-lock`,
    ]) {
      const refused = await runMaos(['tenants', 'export', 'acme', '-o', output, '--force', '-c', configFile]);
      assert.equal(refused.code, 2, `${output}: ${refused.stderr}`);
      assert.match(refused.stderr, /is the database the export reads, or a file SQLite keeps beside it/);
    }
    assert.equal(existsSync(`${database}-journal`), false, 'no -journal written');
    assert.deepEqual(
      await withStore(configFile, (db) => expectedRows(db, 'acme')),
      before,
      'the database is intact',
    );
  });

  test('an export killed with -9 leaves its temporary file; the next export to that file removes it', async () => {
    const out = mkdtempSync(join(dir, 'killed-'));
    const output = join(out, 'acme.tar');
    let left: string | undefined;
    // The kill comes as the file appears; an export that finished first is run again.
    for (let attempt = 0; attempt < 5 && left === undefined; attempt++) {
      left = await exportKilledMidway(configFile, output);
    }
    assert.ok(left, 'an export was killed while it wrote its temporary file');
    assert.match(left, /^\.acme\.tar\.export-\d+-[0-9a-f]{12}-.+\.tmp$/);
    assert.equal(statSync(join(out, left)).mode & 0o777, 0o600);
    // Not this run's to remove: a running export's file, and one of an older version (no process id).
    const running = left.replace(/-\d+-/, `-${process.pid}-`);
    const older = '.acme.tar.0123456789ab.tmp';
    for (const name of [running, older]) writeFileSync(join(out, name), 'keep', { mode: 0o600 });
    const next = await runMaos(['tenants', 'export', 'acme', '-o', output, '-c', configFile]);
    assert.equal(next.code, 0, next.stderr);
    assert.match(
      next.stderr,
      new RegExp(
        `removed .*${left.replaceAll('.', '\\.')}, left by an export to .*acme\\.tar that did not finish`,
      ),
    );
    assert.ok(extract(output).has('manifest.json'));
    assert.deepEqual(readdirSync(out).sort(), [older, running, 'acme.tar'].sort());
  });
});

const MAOS_BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

/**
 * Runs `maos tenants export acme -o <output>` and kills it with SIGKILL as soon as its temporary file
 * appears beside the output; returns that file's name, or undefined when the export finished first.
 */
async function exportKilledMidway(configFile: string, output: string): Promise<string | undefined> {
  const folder = dirname(output);
  const temporary = () => readdirSync(folder).find((name) => name.startsWith(`.${basename(output)}.`));
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('MAOS_')));
  const child = spawn(
    process.execPath,
    [MAOS_BIN, 'tenants', 'export', 'acme', '-o', output, '-c', configFile],
    {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const watcher = watch(folder, () => {
    if (temporary() !== undefined) child.kill('SIGKILL');
  });
  try {
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    if (signal === 'SIGKILL') return temporary();
    assert.equal(code, 0, stderr);
    rmSync(output);
    return undefined;
  } finally {
    watcher.close();
  }
}

describe('maos tenants export: PostgreSQL', { timeout: 240_000 }, () => {
  let dir: string;
  let database: TestDatabase;
  let configFile: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-tenant-export-pg-'));
    database = await createTestDatabase();
    configFile = join(dir, 'maos.json');
    writeFileSync(configFile, JSON.stringify({ dataDir: join(dir, 'data'), store: { url: database.url } }));
    await withStore(configFile, seedTwoTenants);
  });
  after(async () => {
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('every column that may hold a secret is decided', async () => {
    assert.deepEqual(undecided(await withStore(configFile, (db) => exportedColumns(db, true))), []);
  });

  test("the archive holds exactly acme's rows, no secret, a manifest that matches", async () => {
    await checkExport(configFile, mkdtempSync(join(dir, 'out-')));
  });

  test('every page is one range of an index, none sorted (planned with sequential scans and sorts turned off)', async () => {
    const statements = await recordPages(configFile);
    await withStore(configFile, (db) =>
      db.connection().execute(async (connection) => {
        // The test's tables are small enough for a sequential scan to win; turned off, a plan still
        // sorts or scans only when no index gives the page in its order.
        await sql`set enable_seqscan = off`.execute(connection);
        await sql`set enable_sort = off`.execute(connection);
        const indexed = await tenantIndexedTables(connection, true);
        assert.deepEqual(
          EXPORT_TABLES.filter((table) => table.byTenant).map((table) => table.name),
          indexed,
          'the tables read by a tenant index are those that have one',
        );
        const problems: string[] = [];
        for (const { table, statement } of statements) {
          const plan = await connection.executeQuery<{ 'QUERY PLAN': string }>({
            ...statement,
            sql: `explain ${statement.sql}`,
          });
          const text = plan.rows.map((row) => row['QUERY PLAN']).join('\n');
          if (/Sort|Seq Scan/.test(text)) problems.push(`${table.name}: ${text}`);
          if (!indexed.includes(table.name) || !statement.sql.includes(') > (')) continue;
          const condition = /Index Cond: (.*)/.exec(text)?.[1] ?? '';
          if (!condition.includes(`${table.tenantColumn} = `) || !condition.includes(' > ')) {
            problems.push(`${table.name} is no range of a tenant index: ${text}`);
          }
        }
        assert.deepEqual(problems, []);
      }),
    );
  });

  test('pages cross rows that share the first column of their order: each row once', async () => {
    await withStore(configFile, (db) => checkPagesWithTies(db));
  });

  test('an unknown tenant: exit 4', async () => {
    const result = await runMaos(['tenants', 'export', 'nobody', '-o', join(dir, 'x.tar'), '-c', configFile]);
    assert.equal(result.code, 4, result.stderr);
    assert.match(result.stderr, /no tenant nobody in /);
  });
});

describe('maos tenants export beside a running server (SQLite)', { timeout: 120_000 }, () => {
  test('exports while the server serves; a session not finished is exported as it is', async () => {
    // No worker: the session does not finish, and the export reads it as it is.
    const server = await startTestServer({ config: { workers: { concurrency: 0 } } });
    const dir = mkdtempSync(join(tmpdir(), 'maos-tenant-export-live-'));
    try {
      const me = await requestJson<{ tenantId: string }>(`${server.url}/v1/me`);
      const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: {
          objective: 'Say hello',
          agents: [{ name: 'hello', role: 'engineer', task: 'say hello', runner: 'ok' }],
        },
      });
      assert.equal(created.status, 201);
      const configFile = join(dir, 'maos.json');
      writeFileSync(
        configFile,
        JSON.stringify({ dataDir: server.dataDir, store: { synchronous: 'normal' } }),
      );
      const output = join(dir, 'live.tar');
      const result = await runMaos(['tenants', 'export', me.body.tenantId, '-o', output, '-c', configFile]);
      assert.equal(result.code, 0, result.stderr);
      const sessions = extract(output)
        .get('sessions.ndjson')!
        .toString('utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { id: string; status: string });
      assert.deepEqual(
        sessions.map((session) => session.id),
        [created.body.id],
      );
      assert.ok(['pending', 'planning', 'running'].includes(sessions[0]!.status), sessions[0]!.status);
      // The server goes on writing.
      const again = await requestJson(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: {
          objective: 'Say hello again',
          agents: [{ name: 'hello', role: 'engineer', task: 'say hello', runner: 'ok' }],
        },
      });
      assert.equal(again.status, 201);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
