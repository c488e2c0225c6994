// `maos tenants export` at scale: how long the export of a tenant with many sessions takes, and the
// most memory it holds. Seeds a store with one tenant of N sessions (each with its settings, an
// idempotency key, a cached model answer and E events; sessions created in groups of 4 sharing a
// created_at) beside two other tenants of N/2 sessions each, then reads acme's rows, writing them as
// the export does (NDJSON, sha256), page by page:
//   - before: the query shape of the previous release (every table in its primary key's order) on
//     the schema before migration 0026_tenant_export_indexes,
//   - after: the export's reads (store/tenant-export.ts) once that migration is applied,
// each in a child process of its own (time per table, peak RSS), then runs the real command
// (`maos tenants export`, the tar with its manifest) in another, and once more with the JavaScript
// heap capped at 32 MiB (about what a tenant of 25,000 sessions needs too).
//   node bench/tenant-export.ts [sessions=50000] [eventsPerSession=10] [--postgres]
// `--postgres`: DATABASE_URL (an admin URL) when set, else an embedded PostgreSQL (fsync off).
import { spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Kysely, sql } from 'kysely';
import { loadConfig } from '../src/config/load.ts';
import { createDatabase } from '../src/store/db.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { MIGRATIONS } from '../src/store/migrations/index.ts';
import { EXPORT_TABLES, type ExportTable, readTenantRows } from '../src/store/tenant-export.ts';
import { TENANT_TABLES } from '../src/store/tenant-purge.ts';
import { createTestDatabase, type TestDatabase } from '../test/fixtures/postgres.ts';

// biome-ignore lint/suspicious/noExplicitAny: seeds and reads tables of several areas' schemas
type AnyDb = Kysely<any>;

const MIGRATION = '0026_tenant_export_indexes';
const TENANT = 'acme';
/** The V8 old space the command runs with once more: enough for it whatever the tenant's size. */
const HEAP_CAP_MIB = 32;
const BIN = fileURLToPath(new URL('../bin/maos.js', import.meta.url));
/** Loaded into each child: prints its peak RSS when it exits. */
const PEAK_RSS = `data:text/javascript,process.on('exit',()=>process.stderr.write('peak-rss-kib='+process.resourceUsage().maxRSS+'\\n'))`;

interface ChildResult {
  ms: number;
  rows: number;
  tables: Record<string, { rows: number; ms: number }>;
}

/** The tables as the previous release read them: each in its primary key's order. */
function tablesBefore(): ExportTable[] {
  const keys: Record<string, readonly string[]> = {
    tenants: ['id'],
    audit_log: ['seq'],
    deleted_sessions: ['id'],
    ...Object.fromEntries(TENANT_TABLES.map((table) => [table.name, table.key])),
  };
  return EXPORT_TABLES.map((table) => ({ ...table, order: keys[table.name] as readonly string[] }));
}

/** Child: reads acme's rows of every table as `shape` does, written as NDJSON with their sha256. */
async function child(shape: 'before' | 'after', configFile: string, output: string): Promise<void> {
  const handle = createDatabase(loadConfig({ configPath: configFile }));
  const db = handle.db as AnyDb;
  const file = openSync(output, 'w');
  const result: ChildResult = { ms: 0, rows: 0, tables: {} };
  const started = performance.now();
  for (const table of shape === 'before' ? tablesBefore() : EXPORT_TABLES) {
    const tableStarted = performance.now();
    const hash = createHash('sha256');
    let rows = 0;
    let pending: string[] = [];
    let pendingLength = 0;
    const flush = () => {
      const data = Buffer.from(pending.join(''), 'utf8');
      hash.update(data);
      writeSync(file, data);
      pending = [];
      pendingLength = 0;
    };
    for await (const page of readTenantRows(db, table, TENANT)) {
      for (const row of page) {
        const line = `${JSON.stringify(row)}\n`;
        pending.push(line);
        pendingLength += line.length;
        if (pendingLength >= 1 << 20) flush();
      }
      rows += page.length;
    }
    flush();
    hash.digest('hex');
    result.tables[table.name] = { rows, ms: performance.now() - tableStarted };
    result.rows += rows;
  }
  result.ms = performance.now() - started;
  closeSync(file);
  await handle.close();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Runs `args` in a child process; its stdout and peak RSS. */
function run(args: string[]): { stdout: string; peakMiB: number; ms: number } {
  const started = performance.now();
  const result = spawnSync(process.execPath, ['--import', PEAK_RSS, ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const ms = performance.now() - started;
  if (result.status !== 0) throw new Error(`${args.join(' ')} failed: ${result.stderr}`);
  const peak = /peak-rss-kib=(\d+)/.exec(result.stderr);
  return { stdout: result.stdout, peakMiB: Number(peak?.[1] ?? 0) / 1024, ms };
}

/** Inserts `rows` in statements small enough for either dialect's parameter limit. */
async function insert(db: AnyDb, table: string, rows: Record<string, unknown>[]): Promise<void> {
  const width = Object.keys(rows[0] ?? {}).length || 1;
  const per = Math.max(1, Math.floor(4000 / width));
  for (let i = 0; i < rows.length; i += per) {
    await db
      .insertInto(table)
      .values(rows.slice(i, i + per))
      .execute();
  }
}

/** `sessions` sessions of `tenant`, each with settings, an idempotency key, a cache entry and events. */
async function seedTenant(db: AnyDb, tenant: string, sessions: number, events: number): Promise<void> {
  const base = Date.UTC(2026, 0, 1);
  await db.insertInto('tenants').values({ id: tenant, name: tenant, created_at: base }).execute();
  const batch = 500;
  for (let from = 0; from < sessions; from += batch) {
    const ids = Array.from({ length: Math.min(batch, sessions - from) }, () => randomUUID());
    // Four sessions per millisecond: ties in the first column of the sessions' order.
    const created = (i: number) => base + Math.floor((from + i) / 4);
    await db.transaction().execute(async (trx) => {
      await insert(
        trx,
        'sessions',
        ids.map((id, i) => ({
          id,
          tenant_id: tenant,
          objective: `objective ${from + i}: ${'x'.repeat(200)}`,
          strategy: 'pipeline',
          status: 'completed',
          plan_version: 1,
          created_at: created(i),
          updated_at: created(i),
          started_at: created(i),
          finished_at: created(i) + 60_000,
          result: 'the result',
        })),
      );
      await insert(
        trx,
        'session_settings',
        ids.map((id, i) => ({ session_id: id, tenant_id: tenant, approval: 'none', created_at: created(i) })),
      );
      await insert(
        trx,
        'idempotency_keys',
        ids.map((id, i) => ({
          tenant_id: tenant,
          key: `key-${id}`,
          request_hash: 'h',
          session_id: id,
          created_at: created(i),
        })),
      );
      await insert(
        trx,
        'llm_response_cache',
        ids.map((id, i) => ({
          tenant_id: tenant,
          key: `cache-${id}`,
          provider: 'openai',
          model: 'gpt-x',
          response: '{"text":"an answer"}',
          created_at: created(i),
        })),
      );
      await insert(
        trx,
        'events',
        ids.flatMap((id, i) =>
          Array.from({ length: events }, (_, seq) => ({
            session_id: id,
            seq: seq + 1,
            tenant_id: tenant,
            type: 'task.output',
            data: `{"line":"${'y'.repeat(100)}"}`,
            created_at: created(i),
          })),
        ),
      );
    });
  }
}

function fmt(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

async function main(): Promise<void> {
  const sessions = Number(process.argv.slice(2).find((arg) => /^\d+$/.test(arg)) ?? 50_000);
  const events = Number(process.argv.slice(2).filter((arg) => /^\d+$/.test(arg))[1] ?? 10);
  const postgres = process.argv.includes('--postgres');
  const dir = mkdtempSync(join(tmpdir(), 'maos-bench-tenant-export-'));
  let database: TestDatabase | undefined;
  try {
    if (postgres) database = await createTestDatabase({ empty: true });
    const configFile = join(dir, 'maos.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        dataDir: join(dir, 'data'),
        store: { synchronous: 'normal', ...(database ? { url: database.url } : {}) },
      }),
    );
    const handle = createDatabase(loadConfig({ configPath: configFile }));
    const db = handle.db as AnyDb;
    const at = MIGRATIONS.findIndex((migration) => migration.name === MIGRATION);
    if (at === -1) throw new Error(`no migration ${MIGRATION}: the baseline would be the schema after it`);
    await migrateToLatest(db, MIGRATIONS.slice(0, at));
    let started = performance.now();
    await seedTenant(db, TENANT, sessions, events);
    await seedTenant(db, 'globex', Math.floor(sessions / 2), events);
    await seedTenant(db, 'initech', Math.floor(sessions / 2), events);
    if (postgres) await sql`analyze`.execute(db);
    console.log(
      `${postgres ? 'PostgreSQL' : 'SQLite'}: ${TENANT} ${sessions} sessions × ${events} events, ` +
        `2 other tenants ${Math.floor(sessions / 2)} each; seeded in ${fmt(performance.now() - started)}; ` +
        `load average ${loadavg()
          .map((n) => n.toFixed(2))
          .join(' ')}`,
    );
    const self = fileURLToPath(import.meta.url);
    const before = run([self, '--child=before', configFile, join(dir, 'before.ndjson')]);
    started = performance.now();
    await migrateToLatest(db);
    if (postgres) await sql`analyze`.execute(db);
    const migrated = performance.now() - started;
    await handle.close();
    const after = run([self, '--child=after', configFile, join(dir, 'after.ndjson')]);
    const command = run([
      BIN,
      'tenants',
      'export',
      TENANT,
      '-o',
      join(dir, 'acme.tar'),
      '--json',
      '-c',
      configFile,
    ]);
    // Memory that grows with the tenant fails here (V8 lets an uncapped heap grow lazily).
    let capped = 'completed';
    try {
      const output = join(dir, 'capped.tar');
      run([
        `--max-old-space-size=${HEAP_CAP_MIB}`,
        BIN,
        'tenants',
        'export',
        TENANT,
        '-o',
        output,
        '-c',
        configFile,
      ]);
    } catch {
      capped = 'FAILED';
    }

    const b = JSON.parse(before.stdout) as ChildResult;
    const a = JSON.parse(after.stdout) as ChildResult;
    const report = JSON.parse(command.stdout) as { rows: number };
    if (a.rows !== b.rows || report.rows !== a.rows) {
      throw new Error(`rows differ: before ${b.rows}, after ${a.rows}, command ${report.rows}`);
    }
    console.log(`migration ${MIGRATION} on this store: ${fmt(migrated)}`);
    console.log('');
    console.log('table                    rows      before       after');
    for (const [name, table] of Object.entries(a.tables)) {
      const old = b.tables[name];
      if (!old || (old.ms < 20 && table.ms < 20)) continue;
      console.log(
        `${name.padEnd(20)} ${String(table.rows).padStart(8)} ${fmt(old.ms).padStart(11)} ${fmt(table.ms).padStart(11)}`,
      );
    }
    console.log(
      `${'all tables'.padEnd(20)} ${String(a.rows).padStart(8)} ${fmt(b.ms).padStart(11)} ${fmt(a.ms).padStart(11)}`,
    );
    console.log(
      `peak RSS of the reading process: before ${before.peakMiB.toFixed(0)} MiB, after ${after.peakMiB.toFixed(0)} MiB`,
    );
    console.log(
      `maos tenants export (the tar, its manifest, process start included): ${fmt(command.ms)}, ` +
        `peak RSS ${command.peakMiB.toFixed(0)} MiB, ${report.rows} rows`,
    );
    console.log(`maos tenants export with the JavaScript heap capped at ${HEAP_CAP_MIB} MiB: ${capped}`);
  } finally {
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const childShape = process.argv.find((arg) => arg.startsWith('--child='))?.slice('--child='.length);
if (childShape === 'before' || childShape === 'after') {
  const [configFile, output] = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
  await child(childShape, configFile as string, output as string);
} else {
  await main();
}
