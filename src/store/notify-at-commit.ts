// Wake-ups sent by a PostgreSQL transaction itself (pg_notify inside it): delivered when, and only
// if, the transaction commits, to every replica including the sender, whatever path ran it.
import { type Kysely, sql } from 'kysely';
import { isPostgres } from './advisory-lock.ts';

/** The one PostgreSQL channel MAOS uses; payload lines are `<origin> <channel>`. */
export const PG_CHANNEL = 'maos_wake';

/** Origin of transactional notifications: never a replica's own origin, so every replica takes them. */
export const COMMIT_ORIGIN = 'commit';

/**
 * Queues a notification of `channel` in the transaction `trx` (PostgreSQL; nothing on SQLite, where
 * one process owns the database and publishes in memory). Listeners receive it at commit.
 */
// biome-ignore lint/suspicious/noExplicitAny: works inside any schema's transaction
export async function notifyAtCommit(trx: Kysely<any>, channel: string): Promise<void> {
  if (!isPostgres(trx)) return;
  await sql`select pg_notify(${PG_CHANNEL}, ${`${COMMIT_ORIGIN} ${channel}`})`.execute(trx);
}
