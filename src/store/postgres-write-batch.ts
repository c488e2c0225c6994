// How the write queue applies a batch on PostgreSQL: one transaction per operation, in queue order,
// on the batch's one connection. Row locks (session rows above all) are then held for one operation, not for
// the whole batch: with several replicas, a batch holding session X (a finish) while it waits for
// session Y (a claim's start events), against another replica's batch holding Y and waiting for X,
// was a deadlock PostgreSQL only breaks after deadlock_timeout (1 s by default), measured as
// several per second with 2 replicas (bench/cluster.ts). Round trips stay the same as with a
// savepoint per operation (BEGIN/COMMIT instead of SAVEPOINT/RELEASE); the coalesced operations
// (all finishes, all claims, all runs' output flushes of a tick) keep the number of commits per task low.
import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.ts';
import { asStorageFailure, toStoreWriteError } from './store-failure.ts';

/** The outcome of one operation, in batch order. */
export type OpOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Attempts per operation when PostgreSQL aborts it for a deadlock or serialization failure. */
const TRANSIENT_RETRIES = 5;

/**
 * How long the server waits for this replica inside one operation's transaction before it ends the
 * connection (`idle_in_transaction_session_timeout`, for that transaction only). An operation sends
 * its statements back to back, so it is idle for milliseconds; a replica frozen mid-operation
 * (SIGSTOP, a paused VM or container, a node lost without a reset) would otherwise keep its row locks
 * and the reaper's advisory lock until it resumes, or until TCP keepalive gives up (2 h by default):
 * every other replica's write queue waited behind the first session row it shared, heartbeats
 * included, and no replica reaped the frozen one's leases. Well below a third of any sane lease.
 */
export const IDLE_IN_OPERATION_TIMEOUT_MS = 5000;

/** Starts an operation's transaction, bounded as above: one round trip (simple query protocol). */
const BEGIN = sql.raw(
  `begin; set local idle_in_transaction_session_timeout = ${IDLE_IN_OPERATION_TIMEOUT_MS}`,
);

/** PostgreSQL deadlock_detected (40P01) or serialization_failure (40001). */
export function isTransientConflict(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '40001';
}

/**
 * Runs each operation in its own transaction on `conn` (one connection the caller holds) and
 * returns every outcome. An operation that throws is
 * rolled back alone (re-run first if the error was a transient conflict); a failing COMMIT or a
 * lost connection fails that operation with STORE_UNAVAILABLE and the batch goes on (the next
 * operations fail fast if the database is gone).
 */
export async function runPostgresOpsInTransactions(
  conn: Kysely<Database>,
  ops: ReadonlyArray<(trx: Kysely<Database>) => Promise<unknown>>,
): Promise<OpOutcome[]> {
  const outcomes: OpOutcome[] = [];
  for (const op of ops) outcomes.push(await runOne(conn, op));
  return outcomes;
}

async function runOne(
  conn: Kysely<Database>,
  op: (trx: Kysely<Database>) => Promise<unknown>,
): Promise<OpOutcome> {
  for (let attempt = 1; ; attempt++) {
    let value: unknown;
    try {
      await BEGIN.execute(conn);
      value = await op(conn);
    } catch (error) {
      await sql`rollback`.execute(conn).catch(() => undefined);
      if (attempt < TRANSIENT_RETRIES && isTransientConflict(error)) continue;
      return { ok: false, error: asStorageFailure(error) };
    }
    try {
      await sql`commit`.execute(conn);
      return { ok: true, value };
    } catch (error) {
      await sql`rollback`.execute(conn).catch(() => undefined);
      return {
        ok: false,
        error: toStoreWriteError(error),
      };
    }
  }
}
