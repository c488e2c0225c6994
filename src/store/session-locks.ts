// Row locks on sessions for PostgreSQL: operations that decide a session's fate from the state of
// all its tasks (finish, lease expiry, cancel) must not run concurrently on two replicas, or each
// sees the other's task still running and neither finishes the session (write skew under READ
// COMMITTED). SQLite needs nothing: its writers are serialised already.
import { type Kysely, sql } from 'kysely';
import { isPostgres } from './advisory-lock.ts';
import type { Database } from './schema.ts';

/**
 * Locks the sessions' rows until the transaction ends, in id order (a fixed order keeps two
 * replicas locking overlapping sets from deadlocking). No-op on SQLite.
 */
export async function lockSessions(trx: Kysely<Database>, sessionIds: Iterable<string>): Promise<void> {
  if (!isPostgres(trx)) return;
  const ids = [...new Set(sessionIds)].sort();
  if (ids.length === 0) return;
  await sql`select id from sessions where id in (${sql.join(ids)}) order by id for update`.execute(trx);
}
