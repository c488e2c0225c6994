// The clock leases are set and expired by. On PostgreSQL it is the database server's: replicas'
// own clocks may disagree, and one running ahead would expire the healthy leases of the others (its
// reaper sees their deadlines pass early) and run their tasks a second time. On SQLite one process
// owns the database, so its own clock is the only one.
import { type Kysely, type RawBuilder, sql } from 'kysely';
import { isPostgres } from './advisory-lock.ts';

/** The database server's time in Unix ms, read when the statement runs. */
const POSTGRES_NOW_MS = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

/** "Now" for comparing lease deadlines: the database's clock on PostgreSQL, `now` on SQLite. */
// biome-ignore lint/suspicious/noExplicitAny: any schema
export function leaseNow(db: Kysely<any>, now: number): number | RawBuilder<number> {
  return isPostgres(db) ? POSTGRES_NOW_MS : now;
}

/** A lease deadline `leaseMs` from now, by the same clock as leaseNow. */
// biome-ignore lint/suspicious/noExplicitAny: any schema
export function leaseDeadline(db: Kysely<any>, now: number, leaseMs: number): number | RawBuilder<number> {
  return isPostgres(db) ? sql<number>`${POSTGRES_NOW_MS} + ${leaseMs}` : now + leaseMs;
}
