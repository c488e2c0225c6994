// The heartbeat's lease renewal on PostgreSQL: one statement on the pool, beside the write queue, so
// a queue that has fallen behind (a replica busy with many chatty runs, each output flush its own
// transaction) delays the heartbeat no more than any other query. Renewals queued behind that
// backlog ran too late: the lease reaper (queued as well, or on another replica) expired the leases
// of a live replica's runs, which then ran again, up to `tasks.maxAttempts`, and failed.
//
// It never waits for a row lock, so it cannot deadlock with this replica's queued operations (a
// finish updates several of the same tasks in its own order): a task whose row another transaction
// holds at this moment is skipped, reported held as last committed, and renewed by the next beat.
import { type Kysely, sql } from 'kysely';
import { leaseDeadline } from './lease-clock.ts';
import type { Database } from './schema.ts';

/**
 * Extends the leases `owner` still holds on running/leased tasks among `taskIds` to `leaseMs` from
 * now (the database's clock); returns, per task it holds, its attempt (as extendLeases does).
 */
export async function renewLeasesPostgres(
  db: Kysely<Database>,
  owner: string,
  taskIds: readonly string[],
  now: number,
  leaseMs: number,
): Promise<Map<string, number>> {
  if (taskIds.length === 0) return new Map();
  const ids = [...taskIds];
  const { rows } = await sql<{ id: string; attempts: number }>`
    with renewable as materialized (
      select id from tasks
      where id = any(${ids}::text[]) and lease_owner = ${owner} and status in ('leased', 'running')
      for no key update skip locked
    ),
    renewed as (
      update tasks set lease_expires_at = ${leaseDeadline(db, now, leaseMs)}
      from renewable
      where tasks.id = renewable.id
      returning tasks.id, tasks.attempts
    )
    select id, attempts from renewed
    union all
    select id, attempts from tasks
    where id = any(${ids}::text[]) and lease_owner = ${owner} and status in ('leased', 'running')
      and id not in (select id from renewable)`.execute(db);
  return new Map(rows.map((row) => [row.id, Number(row.attempts)]));
}
