// A retention pass deleting many whole sessions (`retention.sessionsDays`): its time with the
// wake-up of each deleted session's readers (onSessionsDeleted: a publish per session through the
// store's notifier, LISTEN/NOTIFY on PostgreSQL) and without, rounds alternated on fresh rows.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { configSchema } from '../src/config/schema.ts';
import { createLocalNotifier, type Notifier, sessionChannel } from '../src/engine/notifier.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createDatabase, type DatabaseHandle } from '../src/store/db.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { createPostgresNotifier } from '../src/store/pg-notifier.ts';
import { getPostgresPool } from '../src/store/postgres-dialect.ts';
import { runRetentionPass } from '../src/store/retention.ts';
import { type AnyDb, buildRetentionTargets } from '../src/store/retention-targets.ts';
import { createTestDatabase } from '../test/fixtures/postgres.ts';

const SESSIONS = Number(process.argv[2] ?? 10_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const EVENTS_PER_SESSION = 3;
const DAY_MS = 86_400_000;

async function seed(db: AnyDb, round: number): Promise<string[]> {
  const finishedAt = Date.now() - 2 * DAY_MS;
  const ids = Array.from({ length: SESSIONS }, (_, i) => `r${round}-${String(i).padStart(6, '0')}`);
  for (let i = 0; i < ids.length; i += 200) {
    const chunk = ids.slice(i, i + 200);
    await db
      .insertInto('sessions')
      .values(
        chunk.map((id) => ({
          id,
          tenant_id: 'default',
          objective: 'o',
          strategy: 'parallel',
          status: 'completed',
          last_seq: EVENTS_PER_SESSION,
          created_at: finishedAt,
          updated_at: finishedAt,
          finished_at: finishedAt,
        })),
      )
      .execute();
    await db
      .insertInto('events')
      .values(
        chunk.flatMap((id) =>
          Array.from({ length: EVENTS_PER_SESSION }, (_, seq) => ({
            session_id: id,
            seq: seq + 1,
            tenant_id: 'default',
            type: 'task.status',
            data: '{}',
            created_at: finishedAt,
          })),
        ),
      )
      .execute();
  }
  return ids;
}

async function bench(store: string, handle: DatabaseHandle, notifier: Notifier): Promise<void> {
  const db = handle.db as unknown as AnyDb;
  const retention = configSchema.parse({
    retention: { eventsDays: 0, outputsDays: 0, messagesDays: 0, sessionsDays: 1 },
  }).retention;
  const times: Record<'without' | 'with', number[]> = { without: [], with: [] };
  for (let round = 0; round < ROUNDS * 2; round++) {
    const mode = round % 2 === 0 ? 'without' : 'with';
    const ids = await seed(db, round);
    // A few readers, as open MCP subscriptions and event streams would be.
    let woken = 0;
    const offs = ids.slice(0, 50).map((id) => notifier.subscribe(sessionChannel(id), () => woken++));
    let published = 0;
    let publishMs = 0;
    const targets = buildRetentionTargets(retention, { postgres: handle.dialect === 'postgres' });
    const started = performance.now();
    const pass = await runRetentionPass(db, targets, {
      batchSize: retention.batchSize,
      ...(mode === 'with'
        ? {
            onSessionsDeleted: (deleted: readonly string[]) => {
              const at = performance.now();
              for (const id of deleted) notifier.publish(sessionChannel(id));
              publishMs += performance.now() - at;
              published += deleted.length;
            },
          }
        : {}),
    });
    const ms = performance.now() - started;
    for (const off of offs) off();
    if (pass.deleted.sessions !== SESSIONS) throw new Error(`deleted ${pass.deleted.sessions} sessions`);
    times[mode].push(ms);
    console.log(
      `${store} ${mode} wake-ups: ${ms.toFixed(0)} ms (${published} published in ${publishMs.toFixed(1)} ms, ${woken} readers woken)`,
    );
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  console.log(
    `${store}: ${SESSIONS} sessions, median ${median(times.without).toFixed(0)} ms without, ${median(times.with).toFixed(0)} ms with`,
  );
}

const dir = mkdtempSync(join(tmpdir(), 'maos-bench-retention-'));
try {
  const sqlite = createDatabase(configSchema.parse({ dataDir: dir, store: { synchronous: 'normal' } }));
  try {
    await migrateToLatest(sqlite.db);
    await bench('SQLite', sqlite, createLocalNotifier());
  } finally {
    await sqlite.close();
  }
  if (!process.argv.includes('--sqlite-only')) {
    const database = await createTestDatabase();
    const postgres = createDatabase(configSchema.parse({ dataDir: dir, store: { url: database.url } }));
    const pool = getPostgresPool(postgres.db);
    if (!pool) throw new Error('no PostgreSQL pool');
    const notifier = createPostgresNotifier({
      url: database.url,
      pool,
      logger: createLogger({ level: 'warn' }),
    });
    try {
      await migrateToLatest(postgres.db);
      await notifier.start();
      await bench('PostgreSQL', postgres, notifier);
    } finally {
      await notifier.close();
      await postgres.close();
      await database.drop();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
