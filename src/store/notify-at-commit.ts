// Wake-ups sent by a PostgreSQL transaction itself (pg_notify inside it): delivered when, and only
// if, the transaction commits, to every replica including the sender, whatever path ran it.
//
// PostgreSQL queues a transaction's notifications at its COMMIT, in one notification queue for the
// whole server (every database, every application). A listener that reads nothing holds the
// queue's tail: another application's session that LISTENs and then stays inside a transaction, a
// frozen client. Once the queue is full, every COMMIT that carries a notification fails ("too many
// notifications in the NOTIFY queue", SQLSTATE 54000) and its writes with it: a cancel, a finish, a
// webhook enqueue. So a transaction sends its notification only while the queue has room, and
// leaves it out otherwise: its writes matter, the notification only hurries what follows from
// them, and what covers a lost notification covers a left-out one (a run on another replica stops
// at its next lease renewal, wake-ups come with the sweep and the poll, webhook deliveries with the
// delivery worker's poll).
import { type Kysely, sql } from 'kysely';
import { isPostgres } from './advisory-lock.ts';

/** The one PostgreSQL channel MAOS uses; payload lines are `<origin> <channel>`. */
export const PG_CHANNEL = 'maos_wake';

/** Origin of transactional notifications: never a replica's own origin, so every replica takes them. */
export const COMMIT_ORIGIN = 'commit';

/**
 * Share of PostgreSQL's notification queue (pg_notification_queue_usage, 1 = full) from which a
 * transaction leaves its notification out. The margin below full is for the notifications other
 * sessions queue between the statement that looks and the COMMIT that queues (a full queue then
 * still fails that COMMIT: STORE_UNAVAILABLE, which the engine tries again and a client may retry;
 * the next try finds the queue past this share and sends nothing). The default queue is 8 GB.
 */
export const NOTIFY_QUEUE_USAGE_LIMIT = 0.9;

/**
 * Queues a notification of `channel` in the transaction `trx` (PostgreSQL; nothing on SQLite, where
 * one process owns the database and publishes in memory). Listeners receive it at commit. Nothing
 * is queued while the server's notification queue is filled past NOTIFY_QUEUE_USAGE_LIMIT: the
 * transaction commits without it.
 */
// biome-ignore lint/suspicious/noExplicitAny: works inside any schema's transaction
export async function notifyAtCommit(trx: Kysely<any>, channel: string): Promise<void> {
  if (!isPostgres(trx)) return;
  // One statement, one round trip as before: pg_notify runs only when the condition holds.
  await sql`select pg_notify(${PG_CHANNEL}, ${`${COMMIT_ORIGIN} ${channel}`})
    where pg_notification_queue_usage() < ${NOTIFY_QUEUE_USAGE_LIMIT}::float8`.execute(trx);
}
