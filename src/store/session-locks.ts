// Row locks on sessions for PostgreSQL: operations that decide a session's fate from the state of
// all its tasks (finish, lease expiry, cancel) must not run concurrently on two replicas, or each
// sees the other's task still running and neither finishes the session (write skew under READ
// COMMITTED). SQLite needs nothing: its writers are serialised already. Also the per-tenant lock
// that makes a quota check and the session insert it admits atomic.
import { createHash } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { isPostgres, LOCK_KEYS } from './advisory-lock.ts';
import type { Database } from './schema.ts';

/**
 * Locks the sessions' rows until the transaction ends, in id order (a fixed order keeps two
 * replicas locking overlapping sets from deadlocking). No-op on SQLite. With `tenantId` (a request
 * naming the session), only that tenant's rows: another tenant's session is not locked, so its
 * request neither waits for nor holds up the session it then gets 404 for.
 *
 * `FOR NO KEY UPDATE`, the lock an UPDATE of a non-key column takes, not `FOR UPDATE`: it excludes
 * the other lockers and writers of the row just the same, but not the `FOR KEY SHARE` locks that
 * foreign-key checks take on the session row (inserting events, or updating a task row already
 * updated in the same transaction, as a claim does). With `FOR UPDATE`, two replicas each holding
 * such a key-share lock on a session the other was locking deadlocked, one second each (measured
 * with bench/cluster.ts and the server's deadlock log).
 */
export async function lockSessions(
  trx: Kysely<Database>,
  sessionIds: Iterable<string>,
  tenantId?: string,
): Promise<void> {
  if (!isPostgres(trx)) return;
  const ids = [...new Set(sessionIds)].sort();
  if (ids.length === 0) return;
  const ofTenant = tenantId === undefined ? sql`` : sql` and tenant_id = ${tenantId}`;
  await sql`select id from sessions where id in (${sql.join(ids)})${ofTenant} order by id for no key update`.execute(
    trx,
  );
}

/** A tenant id as a signed 32-bit integer (the second key of PostgreSQL's two-key advisory lock). */
export function tenantLockKey(tenantId: string): number {
  return createHash('sha256').update(tenantId).digest().readInt32BE(0);
}

/**
 * Serialises the session submissions of one tenant until the transaction ends, so a quota check
 * and the insert it admits are one atomic step across replicas: a second submit waits here until
 * the first has committed, then counts its row (READ COMMITTED reads the newest commits per
 * statement). A transaction-level advisory lock keyed by the tenant id, not a lock on the tenant's
 * row (which tenant-provisioning.ts inserts on the tenant's first request): it holds up only that
 * tenant's submissions, nothing else that reads or locks the row. Two tenants whose hashes collide
 * merely wait for each other. No-op on SQLite, whose write transactions (BEGIN IMMEDIATE) are
 * serialised already.
 */
export async function lockTenantSubmissions(trx: Kysely<Database>, tenantId: string): Promise<void> {
  if (!isPostgres(trx)) return;
  await sql`select pg_advisory_xact_lock(${LOCK_KEYS.tenantSubmissions}::int4, ${tenantLockKey(tenantId)}::int4)`.execute(
    trx,
  );
}
