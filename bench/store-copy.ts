// `maos store copy` throughput: how long moving a single-node installation to PostgreSQL takes.
// Builds a SQLite database of N five-task sessions run by the real engine (a no-op runtime whose
// answers are OUTPUT_BYTES long), then copies it with the real copy (src/store/store-copy.ts) into
// an empty PostgreSQL database and into a new SQLite file, and prints rows/s and MB/s next to a
// baseline measured in the same run: the same rows read with better-sqlite3 and written with bare
// multi-row INSERTs through `pg`, in one transaction, without paging, checks or Kysely.
//   node bench/store-copy.ts [sessions=2000] [outputBytes=2000]
// Uses DATABASE_URL (an admin URL) when set; otherwise starts an embedded PostgreSQL (fsync off).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { createRuntimeRegistry } from '../src/agents/runtimes/runtime.ts';
import { configSchema } from '../src/config/schema.ts';
import { createEngine } from '../src/engine/index.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createDatabase, type DatabaseHandle } from '../src/store/db.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { COPIED_TABLES, copyStore } from '../src/store/store-copy.ts';
import { createTestDatabase } from '../test/fixtures/postgres.ts';
import { BENCH_ACTOR, FIVE_TASK_AGENTS } from './five-task-session.ts';

const SESSIONS = Number(process.argv[2] ?? 2000);
const OUTPUT_BYTES = Number(process.argv[3] ?? 2000);
const logger = createLogger({ level: 'silent' });

function openStore(dataDir: string, url?: string): DatabaseHandle {
  return createDatabase(
    configSchema.parse({ dataDir, store: { synchronous: 'normal', ...(url ? { url } : {}) } }),
  );
}

/** The source: SESSIONS sessions run to completion by the engine, their answers OUTPUT_BYTES long. */
async function buildSource(dir: string): Promise<string> {
  const handle = openStore(dir);
  await migrateToLatest(handle.db);
  const runtimes = createRuntimeRegistry();
  const answer = 'x'.repeat(OUTPUT_BYTES);
  runtimes.registerLlm({ kind: 'noop', run: async () => ({ output: answer }) });
  let finished = 0;
  let allDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    allDone = resolve;
  });
  const engine = createEngine({
    config: {
      workers: { concurrency: 64, pollIntervalMs: 1000 },
      tasks: { leaseSeconds: 60, maxAttempts: 1 },
      runners: {},
    },
    db: handle.db,
    logger,
    runtimes,
    observer: {
      sessionFinished: () => {
        finished += 1;
        if (finished === SESSIONS) allDone();
      },
    },
  });
  engine.start();
  for (let i = 0; i < SESSIONS; i++) {
    await engine.service.createSession(BENCH_ACTOR, {
      objective: `objective ${i}`,
      agents: FIVE_TASK_AGENTS,
    });
  }
  await done;
  await engine.stop({ graceMs: 1000 });
  await handle.close();
  return join(dir, 'maos.db');
}

/** The floor: every row read at once with better-sqlite3, written with bare multi-row INSERTs. */
async function baseline(sourcePath: string, url: string): Promise<number> {
  const sqlite = new SqliteDatabase(sourcePath, { readonly: true });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const started = performance.now();
  try {
    await client.query('begin');
    await client.query("delete from tenants where id = 'default'");
    for (const table of COPIED_TABLES) {
      const rows = sqlite.prepare(`select * from ${table.name}`).all() as Record<string, unknown>[];
      if (rows.length === 0) continue;
      const columns = Object.keys(rows[0]!);
      const perStatement = Math.floor(30_000 / columns.length);
      for (let start = 0; start < rows.length; start += perStatement) {
        const chunk = rows.slice(start, start + perStatement);
        const values: unknown[] = [];
        const tuples = chunk.map((row) => {
          const placeholders = columns.map((column) => {
            values.push(row[column]);
            return `$${values.length}`;
          });
          return `(${placeholders.join(', ')})`;
        });
        await client.query(
          `insert into ${table.name} (${columns.map((column) => `"${column}"`).join(', ')}) values ${tuples.join(', ')}`,
          values,
        );
      }
    }
    await client.query('commit');
    return (performance.now() - started) / 1000;
  } finally {
    await client.end();
    sqlite.close();
  }
}

async function timedCopy(source: DatabaseHandle, target: DatabaseHandle) {
  await migrateToLatest(target.db);
  const started = performance.now();
  const report = await copyStore(source.db, target.db);
  return {
    seconds: (performance.now() - started) / 1000,
    rows: report.tables.reduce((sum, t) => sum + t.rows, 0),
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'maos-bench-copy-'));
  const load = loadavg();
  const databases: { drop(): Promise<void> }[] = [];
  try {
    const building = performance.now();
    const sourcePath = await buildSource(dir);
    const megabytes = statSync(sourcePath).size / 1e6;
    console.log(
      `Source: ${SESSIONS} sessions of ${FIVE_TASK_AGENTS.length} tasks, answers of ${OUTPUT_BYTES} bytes, ` +
        `${megabytes.toFixed(1)} MB of SQLite (built in ${((performance.now() - building) / 1000).toFixed(1)} s); ` +
        `load average ${load.map((x) => x.toFixed(2)).join(' ')}\n`,
    );
    const source = openStore(dir);
    const toPostgres = await createTestDatabase({ empty: true });
    databases.push(toPostgres);
    const floor = await createTestDatabase({ empty: true });
    databases.push(floor);
    const print = (name: string, seconds: number, rows: number) =>
      console.log(
        `  ${name.padEnd(46)} ${seconds.toFixed(2).padStart(7)} s  ${Math.round(rows / seconds)
          .toLocaleString('en-US')
          .padStart(9)} rows/s  ${(megabytes / seconds).toFixed(1).padStart(6)} MB/s`,
      );
    try {
      const postgres = openStore(dir, toPostgres.url);
      const intoPostgres = await timedCopy(source, postgres);
      await postgres.close();
      print('maos store copy, SQLite → PostgreSQL', intoPostgres.seconds, intoPostgres.rows);

      const floorStore = openStore(dir, floor.url);
      await migrateToLatest(floorStore.db);
      await floorStore.close();
      const floorSeconds = await baseline(sourcePath, floor.url);
      print('baseline: bare INSERTs through pg, one read', floorSeconds, intoPostgres.rows);

      const sqliteTarget = openStore(join(dir, 'copy'));
      const intoSqlite = await timedCopy(source, sqliteTarget);
      await sqliteTarget.close();
      print('maos store copy, SQLite → SQLite', intoSqlite.seconds, intoSqlite.rows);
      console.log(
        `\n  ${intoPostgres.rows.toLocaleString('en-US')} rows; the copy into PostgreSQL took ` +
          `${(intoPostgres.seconds / floorSeconds).toFixed(2)}× the baseline (paging in key order, row counts ` +
          'checked per table, the audit head compared, one transaction)',
      );
    } finally {
      await source.close();
    }
  } finally {
    for (const database of databases) await database.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
