// The task claim on PostgreSQL: ready tasks are taken with SKIP LOCKED together with their
// sessions' rows, so a claim never waits for a lock. A claim that waited could deadlock: under
// READ COMMITTED, `FOR UPDATE` on a row another replica has just claimed and committed locks that
// row's newest version even though it no longer qualifies (it is then skipped but stays locked), and
// that replica's finish of the task then waits for this claim while this claim waited for the
// session row held by that finish (seen in the server's deadlock log under bench/cluster.ts).
import { type Kysely, sql } from 'kysely';
import { leaseDeadline } from './lease-clock.ts';
import type { Database, TasksTable } from './schema.ts';
import type { ClaimRequest } from './task-store.ts';

/**
 * Claims up to `limit` ready tasks, oldest ready first: ready → leased, attempts + 1. Tasks whose
 * session row is locked at this moment (another replica finishing or cancelling in it) are left for
 * the next claim; the session rows of the claimed tasks stay locked until the claim commits, so the
 * claim's own event appends do not wait either.
 *
 * The tasks are picked in a MATERIALIZED CTE, evaluated once. As `UPDATE … WHERE id IN (SELECT …
 * LIMIT n FOR … SKIP LOCKED)` the planner may run the subquery on the inner side of a nested loop,
 * once per row of the outer scan; each run skips the rows this statement has already updated and
 * locks the next n, so one claim could take every ready task, far more than the worker's free
 * slots (its scheduler then ran them all at once).
 */
export async function claimReadyTasksPostgres(
  trx: Kysely<Database>,
  request: ClaimRequest,
): Promise<TasksTable[]> {
  const { rows } = await sql<TasksTable>`
    with picked as materialized (
      select t.id from tasks t join sessions s on s.id = t.session_id
      where t.status = 'ready'
      order by t.ready_at
      limit ${request.limit}
      for no key update of t, s skip locked
    )
    update tasks set
      status = 'leased', lease_owner = ${request.owner},
      lease_expires_at = ${leaseDeadline(trx, request.now, request.leaseMs)}, attempts = attempts + 1,
      updated_at = ${request.now}
    from picked
    where tasks.id = picked.id
    returning tasks.*`.execute(trx);
  return rows;
}
