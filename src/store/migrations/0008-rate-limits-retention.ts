// Migration 0008_rate_limits_retention: the shared rate-limit counters of cluster mode and the index
// the retention job walks (sessions by finish time).
import { type Kysely, sql } from 'kysely';
import { isPostgres } from '../advisory-lock.ts';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

/**
 * PostgreSQL: `rate_limits` in the layout rate-limiter-flexible's RateLimiterPostgres expects (the
 * library is told the table exists and never runs DDL). UNLOGGED: counters need no durability, and
 * without WAL a counter update commits without waiting for a WAL flush, so the row lock on a busy
 * tenant's counter is held for microseconds; after a PostgreSQL crash (or on a promoted standby)
 * the counters simply start from zero. SQLite keeps its counters in process memory, so it gets no
 * such table. Both: `sessions_finished_at` for the retention job.
 */
export async function up(db: AnyDb): Promise<void> {
  if (isPostgres(db)) {
    await db.schema
      .createTable('rate_limits')
      .modifyFront(sql`unlogged`)
      .addColumn('key', 'varchar(255)', (c) => c.primaryKey())
      .addColumn('points', 'integer', (c) => c.notNull().defaultTo(0))
      // Epoch milliseconds when the window ends; null = never.
      .addColumn('expire', 'bigint')
      .execute();
  }
  await db.schema.createIndex('sessions_finished_at').on('sessions').column('finished_at').execute();
}

/** Drops what up() created. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropIndex('sessions_finished_at').execute();
  if (isPostgres(db)) await db.schema.dropTable('rate_limits').execute();
}
