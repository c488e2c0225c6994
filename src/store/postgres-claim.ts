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

/** The last tenant this process's previous fair claim ranked: the next window starts after it. */
let tenantCursor = '';

/**
 * Claims up to `limit` ready tasks, fairly between tenants and oldest ready first within one (the
 * order of claimReadyTasks, docs/adr/0013-fair-claims-between-tenants.md): ready → leased, attempts
 * + 1. Tasks whose session row is locked at this moment (another replica finishing or cancelling in
 * it) are left for the next claim; the session rows of the claimed tasks stay locked until the
 * claim commits, so the claim's own event appends do not wait either.
 *
 * One statement when one tenant has all the ready tasks (or none are ready), the common case: it
 * claims that tenant's oldest, and reports whether several tenants have ready tasks; only then does
 * the fair claim below run, which costs PostgreSQL about twice the planning.
 *
 * The CTEs are MATERIALIZED, evaluated once. As `UPDATE … WHERE id IN (SELECT … LIMIT n FOR …
 * SKIP LOCKED)` the planner may run the subquery on the inner side of a nested loop, once per row
 * of the outer scan; each run skips the rows this statement has already updated and locks the next
 * n, so one claim could take every ready task, far more than the worker's free slots (its
 * scheduler then ran them all at once).
 */
export async function claimReadyTasksPostgres(
  trx: Kysely<Database>,
  request: ClaimRequest,
  window: number,
): Promise<TasksTable[]> {
  // The lowest and highest tenant id with ready tasks: the two ends of tasks_ready_tenant.
  const { rows } = await sql<TasksTable & { several_tenants: boolean }>`
    with bounds as materialized (
      select min(tenant_id) as lo, max(tenant_id) as hi from tasks where status = 'ready'
    ),
    picked as materialized (
      select t.id from tasks t join sessions s on s.id = t.session_id
      where t.status = 'ready' and t.tenant_id = (select lo from bounds where lo = hi)
      order by t.ready_at
      limit ${request.limit}
      for no key update of t, s skip locked
    ),
    claimed as (
      update tasks set ${claimedColumns(trx, request)}
      from picked
      where tasks.id = picked.id
      returning tasks.*
    )
    select claimed.*, bounds.lo is distinct from bounds.hi as several_tenants
    from bounds left join claimed on true`.execute(trx);
  if (rows[0]?.several_tenants) {
    const start = tenantCursor;
    const { tasks, last } = await claimFairly(trx, request, start, window);
    tenantCursor = last ?? tenantCursor;
    return tasks;
  }
  return rows.filter((row) => row.id !== null).map(({ several_tenants: _, ...task }) => task);
}

/** What a claim sets on the tasks it takes. */
function claimedColumns(trx: Kysely<Database>, request: ClaimRequest) {
  return sql`
    status = 'leased', lease_owner = ${request.owner},
    lease_expires_at = ${leaseDeadline(trx, request.now, request.leaseMs)}, attempts = attempts + 1,
    updated_at = ${request.now}`;
}

/**
 * The claim when several tenants have ready tasks, in two steps, as `FOR … SKIP LOCKED` cannot go
 * with the window function that ranks: `shares` reads, without locks, how many of the slots each
 * tenant gets (its `limit` oldest ready tasks ranked running + 1, running + 2, … where running
 * counts its tasks claimed now on every replica, the lowest `limit` ranks taken); `picked` then
 * locks each tenant's share of its oldest ready tasks, skipping those locked. Replicas claiming at
 * the same moment compute the same shares, and each takes the next unlocked tasks of a tenant, as
 * the claim oldest-first across tenants did. The tenants with ready tasks are found by stepping
 * through tasks_ready_tenant from one tenant id to the next, at most `window` of them after
 * `cursor` (wrapping around to the lowest id; TENANT_WINDOW in task-store.ts), so the claim reads
 * about `limit` rows per tenant of the window, never the whole queue nor every tenant; it returns
 * the last tenant of the window, where the next claim's starts. (`picked` repeats the limit its
 * shares add up to: with its estimate the planner updates the tasks by key instead of hashing the
 * whole table.)
 *
 * A tenant's share comes up short when another replica has just locked or claimed its last ready
 * tasks (or their sessions' rows are locked): its whole ready queue was tried, nothing of it can be
 * taken now. Then the claim ranks again at once, once, for the slots left, without the tenants that
 * came up short, so those slots go to the other tenants' ready tasks instead of waiting for the next
 * wake-up. The second round sees this claim's tasks as claimed, so it shares fairly as well; its
 * window starts at the same cursor and reaches as many tenants further as came up short.
 */
async function claimFairly(
  trx: Kysely<Database>,
  request: ClaimRequest,
  cursor: string,
  window: number,
  exhausted: readonly string[] = [],
): Promise<{ tasks: TasksTable[]; last: string | null }> {
  // The window may pass over the tenants that came up short (filtered out below), so a second round
  // still ranks up to `window` others.
  const size = window + exhausted.length;
  const { rows } = await sql<TasksTable & { short_tenants: string[] | null; last_tenant: string | null }>`
    with recursive after_cursor(tenant_id, n) as (
      (select tenant_id, 1 from tasks where status = 'ready' and tenant_id > ${cursor} order by tenant_id limit 1)
      union all
      select (
        select t.tenant_id from tasks t where t.status = 'ready' and t.tenant_id > a.tenant_id
        order by t.tenant_id limit 1
      ), a.n + 1
      from after_cursor a where a.tenant_id is not null and a.n < ${size}
    ),
    from_start(tenant_id, n) as (
      (
        select tenant_id, (select count(tenant_id) from after_cursor) + 1 from tasks
        where status = 'ready' and tenant_id <= ${cursor} order by tenant_id limit 1
      )
      union all
      select (
        select t.tenant_id from tasks t
        where t.status = 'ready' and t.tenant_id > b.tenant_id and t.tenant_id <= ${cursor}
        order by t.tenant_id limit 1
      ), b.n + 1
      from from_start b where b.tenant_id is not null and b.n < ${size}
    ),
    ready_tenants as materialized (
      select tenant_id, n from after_cursor where tenant_id is not null
      union all
      select tenant_id, n from from_start where tenant_id is not null and n <= ${size}
    ),
    shares as materialized (
      select top.tenant_id, count(*) as share from (
        select r.tenant_id from ready_tenants r
        cross join lateral (
          select count(*) as running from tasks l
          where l.status in ('leased', 'running') and l.tenant_id = r.tenant_id
        ) claimed
        cross join lateral (
          select oldest.ready_at, row_number() over (order by oldest.ready_at) as position from (
            select t.ready_at from tasks t where t.status = 'ready' and t.tenant_id = r.tenant_id
            order by t.ready_at limit ${request.limit}
          ) oldest
        ) c
        where r.tenant_id is not null
          ${exhausted.length > 0 ? sql`and r.tenant_id <> all(${[...exhausted]}::text[])` : sql``}
        order by claimed.running + c.position, c.ready_at
        limit ${request.limit}
      ) top
      group by top.tenant_id
    ),
    picked as materialized (
      select p.id from shares cross join lateral (
        select t.id from tasks t join sessions s on s.id = t.session_id
        where t.status = 'ready' and t.tenant_id = shares.tenant_id
        order by t.ready_at
        limit shares.share
        for no key update of t, s skip locked
      ) p
      limit ${request.limit}
    ),
    claimed as (
      update tasks set ${claimedColumns(trx, request)}
      from picked
      where tasks.id = picked.id
      returning tasks.*
    ),
    short as (
      select array_agg(shares.tenant_id) as tenants from shares
      where shares.share > (select count(*) from claimed where claimed.tenant_id = shares.tenant_id)
    )
    select claimed.*, short.tenants as short_tenants,
      (select tenant_id from ready_tenants order by n desc limit 1) as last_tenant
    from short left join claimed on true`.execute(trx);
  const tasks = rows
    .filter((row) => row.id !== null)
    .map(({ short_tenants: _, last_tenant: __, ...task }) => task);
  const short = rows[0]?.short_tenants ?? [];
  const last = rows[0]?.last_tenant ?? null;
  // One more round at most: the second one's own shortfall waits for the next wake-up.
  if (short.length === 0 || tasks.length >= request.limit || exhausted.length > 0) return { tasks, last };
  const more = await claimFairly(
    trx,
    { ...request, limit: request.limit - tasks.length },
    cursor,
    window,
    short,
  );
  return { tasks: [...tasks, ...more.tasks], last };
}
