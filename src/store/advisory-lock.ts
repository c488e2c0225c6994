// PostgreSQL advisory locks: cluster-wide mutual exclusion without a lock table. Used so that only
// one replica migrates at a time and periodic jobs (lease reaper, retention) run single-flight.
import { type Kysely, PostgresAdapter, sql } from 'kysely';

/** Lock keys (64-bit in PostgreSQL; small constants here). Never reuse a number for another purpose. */
export const LOCK_KEYS = {
  migrate: 72_700_001,
  leaseReaper: 72_700_002,
  retention: 72_700_003,
  sessionDeadlines: 72_700_007,
  /** Short-TTL retention targets (MCP replay rows), apart from the long main retention pass. */
  frequentRetention: 72_700_009,
  /** Appends to the audit hash chain: one writer at a time across replicas. */
  auditAppend: 72_700_010,
  /** First key of the two-key form `(tenantSubmissions, hash(tenant))`: one lock per tenant. */
  tenantSubmissions: 72_700_008,
  /** First key of `(tenantCustomRoles, hash(tenant))`: a tenant's role creates, one at a time. */
  tenantCustomRoles: 72_700_011,
} as const;

// biome-ignore lint/suspicious/noExplicitAny: works on any schema
type AnyDb = Kysely<any>;

/** True when `db` talks to PostgreSQL (advisory locks exist there only). */
export function isPostgres(db: AnyDb): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

/**
 * Runs `fn` while holding the session-level advisory lock `key`, waiting for it if another replica
 * holds it, for as long as that takes: also when the database or role sets a statement_timeout,
 * lock_timeout or (PostgreSQL 17+) transaction_timeout (a managed service's default), which would
 * end the wait with an error. The lock lives on one pooled connection while `fn` uses the others
 * (pool size ≥ 2). On SQLite (one process owns the file) `fn` just runs.
 */
export async function withAdvisoryLock<T>(db: AnyDb, key: number, fn: () => Promise<T>): Promise<T> {
  if (!isPostgres(db)) return fn();
  return db.connection().execute(async (conn) => {
    // The timeouts are lifted for this transaction only; the session-level lock outlives it.
    // transaction_timeout exists from PostgreSQL 17 on (current_setting answers null before).
    await conn.transaction().execute(async (trx) => {
      await sql`select set_config('statement_timeout', '0', true), set_config('lock_timeout', '0', true),
        case when current_setting('transaction_timeout', true) is not null
          then set_config('transaction_timeout', '0', true) end`.execute(trx);
      await sql`select pg_advisory_lock(${key})`.execute(trx);
    });
    try {
      return await fn();
    } finally {
      await sql`select pg_advisory_unlock(${key})`.execute(conn);
    }
  });
}

/**
 * Single-flight: runs `fn` only if no other session holds `key`, inside a transaction whose
 * lifetime bounds the lock (released at commit or rollback, even if the process dies). Returns
 * `{ ran: false }` when another replica is already doing the job. On SQLite `fn` always runs.
 */
export async function runIfLockFree<T>(
  db: AnyDb,
  key: number,
  fn: (trx: AnyDb) => Promise<T>,
): Promise<{ ran: true; value: T } | { ran: false }> {
  if (!isPostgres(db)) return { ran: true, value: await fn(db) };
  return db.transaction().execute(async (trx) => {
    if (!(await tryTransactionLock(trx, key))) return { ran: false as const };
    return { ran: true as const, value: await fn(trx) };
  });
}

/**
 * Takes the transaction-level advisory lock `key` if it is free and returns whether it did; the lock
 * is released when the surrounding transaction ends. Always true on SQLite. For periodic jobs that
 * run inside an existing transaction (e.g. the lease reaper inside a write batch).
 */
export async function tryTransactionLock(trx: AnyDb, key: number): Promise<boolean> {
  if (!isPostgres(trx)) return true;
  const row = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(${key}) as locked`.execute(trx);
  return row.rows[0]?.locked === true;
}
