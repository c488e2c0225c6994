// Task queue queries: claiming ready tasks with a lease, starting handed-off tasks, extending and
// finding expired leases, completing runs (reading task graphs is task-graph.ts). Claims go
// through claimReadyTasks only, so PostgreSQL's locking claim (postgres-claim.ts) is chosen in
// one place.
import { type Kysely, sql } from 'kysely';
import { transitionTask } from '../domain/task-state.ts';
import type { TaskStatus } from '../domain/types.ts';
import { isPostgres } from './advisory-lock.ts';
import { precompileQuery } from './compiled-query.ts';
import type { DialectName } from './db.ts';
import { leaseDeadline, leaseNow } from './lease-clock.ts';
import { claimReadyTasksPostgres } from './postgres-claim.ts';
import type { Database, TasksTable } from './schema.ts';
import { appendModelUsageSql, encodeModelUsage, type ModelUsage } from './task-model-usage.ts';

export interface ClaimRequest {
  owner: string;
  limit: number;
  leaseMs: number;
  now: number;
  /** How many tenants with ready tasks a claim ranks at most (TENANT_WINDOW; raised to `limit`). */
  tenantWindow?: number;
}

/**
 * Where a task started by one UPDATE ends: a handed-off one goes pending → ready → leased → running,
 * a claimed one (SQLite) ready → leased → running.
 */
const STARTED_STATUS = transitionTask(
  transitionTask(transitionTask('pending', 'dependencies_met'), 'claim'),
  'start',
);

/**
 * The lowest and highest tenant id with ready tasks (null: none), from the ends of the partial index
 * tasks_ready_tenant: equal when one tenant has all the ready tasks, the common case, claimed oldest
 * first without ranking tenants.
 */
const readyTenantRange = precompileQuery<Database, { lo: string | null; hi: string | null }>(0, (db) => ({
  compile: () =>
    sql<{ lo: string | null; hi: string | null }>`select
      (select min(tenant_id) from tasks where status = 'ready') as lo,
      (select max(tenant_id) from tasks where status = 'ready') as hi`.compile(db),
}));

/**
 * How many tenants with ready tasks one claim ranks at most (see
 * docs/adr/0013-fair-claims-between-tenants.md): with more, each claim ranks the next window of
 * them in tenant id order, after the last one the previous claim of this process ranked, wrapping
 * around, so the claim's cost does not grow with their number. Never fewer than the claim's slots,
 * so a claim still fills every slot (each tenant in the window has a ready task).
 */
export const TENANT_WINDOW = 64;

/** The last tenant this process's previous fair claim ranked (SQLite): the next window starts after it. */
let tenantCursor = '';

/**
 * The tenant ids with ready tasks in this claim's window, in window order: up to `size` of them
 * after `cursor` in tenant id order, then from the lowest id on (up to `cursor`) if the window is
 * not full yet. Each is one step through tasks_ready_tenant from one tenant id to the next.
 */
function tenantWindow(trx: Kysely<Database>, cursor: string, size: number) {
  return sql<{ tenant_id: string; n: number }>`
    with recursive after_cursor(tenant_id, n) as (
      select min(tenant_id), 1 from tasks where status = 'ready' and tenant_id > ${cursor}
      union all
      select (select min(t.tenant_id) from tasks t where t.status = 'ready' and t.tenant_id > a.tenant_id), a.n + 1
      from after_cursor a where a.tenant_id is not null and a.n < ${size}
    ),
    from_start(tenant_id, n) as (
      select min(tenant_id), (select count(tenant_id) from after_cursor) + 1
      from tasks where status = 'ready' and tenant_id <= ${cursor}
      union all
      select (
        select min(t.tenant_id) from tasks t
        where t.status = 'ready' and t.tenant_id > b.tenant_id and t.tenant_id <= ${cursor}
      ), b.n + 1
      from from_start b where b.tenant_id is not null and b.n < ${size}
    )
    select tenant_id, n from after_cursor where tenant_id is not null
    union all
    select tenant_id, n from from_start where tenant_id is not null and n <= ${size}
    order by n`.execute(trx);
}

/**
 * SQLite's fair pick of `limit` ready tasks among the tenants of the window (see claimReadyTasks):
 * each one's `limit` oldest ready tasks ranked running + 1, running + 2, … where running counts its
 * tasks claimed now (tasks_claimed_tenant), the lowest ranks first, the older task on a tie.
 */
function fairPick(limit: number, tenants: readonly string[]) {
  return sql<string>`(
    with ready_tenants(tenant_id) as (values ${sql.join(tenants.map((id) => sql`(${id})`))}),
    ranked as (
      select c.id, c.ready_at,
        (select count(*) from tasks l where l.status in ('leased', 'running') and l.tenant_id = r.tenant_id)
          + row_number() over (partition by r.tenant_id order by c.ready_at) as rank
      from ready_tenants r join tasks c on c.rowid in (
        select t.rowid from tasks t where t.status = 'ready' and t.tenant_id = r.tenant_id
        order by t.ready_at limit ${limit})
    )
    select id from ranked order by rank, ready_at limit ${limit})`;
}

/**
 * Claims up to `limit` ready tasks, fairly between tenants and oldest ready first within one (see
 * docs/adr/0013-fair-claims-between-tenants.md): ready → leased, attempts + 1. Each slot goes to
 * the tenant with the fewest tasks claimed now (on every replica) plus those this claim has given
 * it so far; with one tenant ready, that is simply its oldest ready tasks. With more tenants ready
 * than the window (TENANT_WINDOW), the claim ranks only the window's, the next ones at each claim.
 * With `start`, SQLite goes straight on to running in the same UPDATE (one writer: the claim and
 * the start share a transaction anyway); the rows' status tells the caller whether it still has to
 * start them. The caller writes the start events.
 */
export async function claimReadyTasks(
  trx: Kysely<Database>,
  dialect: DialectName,
  request: ClaimRequest & { start?: boolean },
): Promise<TasksTable[]> {
  // PostgreSQL: a claim that never waits for a lock (see postgres-claim.ts).
  const window = Math.max(request.tenantWindow ?? TENANT_WINDOW, request.limit);
  if (dialect === 'postgres') return claimReadyTasksPostgres(trx, request, window);
  const { lo, hi } = (await readyTenantRange(trx)).rows[0] ?? { lo: null, hi: null };
  if (lo === null) return [];
  let tenants: string[] = [];
  if (lo !== hi) {
    tenants = (await tenantWindow(trx, tenantCursor, window)).rows.map((row) => row.tenant_id);
    tenantCursor = tenants.at(-1) ?? tenantCursor;
    if (tenants.length === 0) return [];
  }
  const candidates =
    lo === hi
      ? trx
          .selectFrom('tasks')
          .select('id')
          // A literal, not a bound parameter: only then can SQLite use the partial index
          // tasks_ready_tenant (WHERE status = 'ready'); with `status = ?` every claim scanned the
          // whole tasks table.
          .where('status', '=', sql.lit('ready'))
          .where('tenant_id', '=', lo)
          .orderBy('ready_at')
          .limit(request.limit)
      : fairPick(request.limit, tenants);
  // SQLite serialises writers (the write queue holds the lock), so it needs no row locks.
  return trx
    .updateTable('tasks')
    .set({
      status: request.start ? STARTED_STATUS : transitionTask('ready', 'claim'),
      lease_owner: request.owner,
      lease_expires_at: request.now + request.leaseMs,
      attempts: sql`attempts + 1`,
      updated_at: request.now,
      ...(request.start ? { started_at: request.now } : {}),
    })
    .where('id', 'in', candidates)
    .returningAll()
    .execute();
}

/** Starts one handed-off task (see startReadiedTasks). */
const startReadiedTask = precompileQuery<Database, TasksTable>(4, (db, [owner, expiresAt, now, taskId]) =>
  db
    .updateTable('tasks')
    .set({
      status: STARTED_STATUS,
      lease_owner: owner as string,
      lease_expires_at: expiresAt as never,
      attempts: sql`attempts + 1`,
      ready_at: now as never,
      started_at: now as never,
      updated_at: now as never,
    })
    .where('id', '=', taskId as string)
    .where('status', '=', sql.lit('pending'))
    // Fair between tenants (claimReadyTasks): while a task of another tenant waits in the ready
    // queue, the slot goes to the claim, which ranks the tenants. Two ranges of tasks_ready_tenant.
    .where(
      sql<boolean>`not exists (select 1 from tasks w where w.status = 'ready' and w.tenant_id < tasks.tenant_id)`,
    )
    .where(
      sql<boolean>`not exists (select 1 from tasks w where w.status = 'ready' and w.tenant_id > tasks.tenant_id)`,
    )
    .returningAll(),
);

/**
 * Starts pending tasks whose dependencies were just met for `owner` (pending → ready → leased →
 * running in one UPDATE each, attempts + 1, lease from now): the finishing transaction's hand-off
 * of a chain's next step to the slot that just became free (engine/advance-sessions.ts). SQLite
 * only (in process: a precompiled UPDATE by id per task costs no round trip). Returns the rows
 * started, in the order given; a task no longer pending is skipped, and so is every task while
 * tasks of another tenant wait in the ready queue (the caller makes it ready: the next claim
 * decides, fairly between tenants, which runs first).
 */
export async function startReadiedTasks(
  trx: Kysely<Database>,
  taskIds: readonly string[],
  request: Omit<ClaimRequest, 'limit'>,
): Promise<TasksTable[]> {
  const { now, owner, leaseMs } = request;
  const started: TasksTable[] = [];
  for (const taskId of taskIds) {
    started.push(...(await startReadiedTask(trx, owner, now + leaseMs, now, taskId)).rows);
  }
  return started;
}

/**
 * Extends the leases `owner` still holds on running/leased tasks to `leaseMs` from now (by the
 * lease clock, store/lease-clock.ts); returns the ids it still holds.
 */
export async function extendLeases(
  trx: Kysely<Database>,
  owner: string,
  taskIds: readonly string[],
  now: number,
  leaseMs: number,
): Promise<Map<string, number>> {
  if (taskIds.length === 0) return new Map();
  const rows = await trx
    .updateTable('tasks')
    .set({ lease_expires_at: leaseDeadline(trx, now, leaseMs) })
    .where('lease_owner', '=', owner)
    .where('status', 'in', ['leased', 'running'])
    .where('id', 'in', [...taskIds])
    .returning(['id', 'attempts'])
    .execute();
  // With its attempt: a run of an earlier attempt of the same task, in the same process (its lease
  // expired during a stall and the task was claimed again), does not hold the lease.
  return new Map(rows.map((row) => [row.id, Number(row.attempts)]));
}

/** Claimed tasks whose lease ran out before `now`. */
export async function findExpiredLeases(
  trx: Kysely<Database>,
  now: number,
  limit: number,
): Promise<TasksTable[]> {
  return (
    trx
      .selectFrom('tasks')
      .selectAll()
      // Literals so that SQLite can use the partial index tasks_claimed_leases (see claimReadyTasks).
      .where('status', 'in', [sql.lit('leased'), sql.lit('running')])
      .where('lease_expires_at', '<', leaseNow(trx, now))
      .orderBy('lease_expires_at')
      .limit(limit)
      .execute()
  );
}

/**
 * completeClaimedTasks for one run, fenced like the multi-row form: a success needs `running`, a
 * failure `leased` or `running`.
 */
function precompileCompleteTask(fromStatuses: readonly TaskStatus[]) {
  return precompileQuery<Database, { id: string }>(
    12,
    (
      db,
      [
        status,
        result,
        error,
        inputTokens,
        outputTokens,
        cacheReadTokens,
        costUsd,
        modelUsage,
        now,
        id,
        attempt,
        owner,
      ],
    ) =>
      db
        .updateTable('tasks')
        // Usage adds up: an earlier attempt whose lease expired may have been charged already.
        .set((eb) => ({
          status: status as TaskStatus,
          result: result as string,
          error: error as string,
          input_tokens: eb('input_tokens', '+', inputTokens as never),
          output_tokens: eb('output_tokens', '+', outputTokens as never),
          cache_read_tokens: eb('cache_read_tokens', '+', cacheReadTokens as never),
          cost_usd: eb('cost_usd', '+', costUsd as never),
          // The run's spend per model (store/task-model-usage.ts), in the same UPDATE.
          model_usage: appendModelUsageSql(sql.ref('model_usage'), modelUsage),
          // The finish charges all the run spent: its record of spend so far is settled with it.
          unsettled_usage: null,
          lease_owner: null,
          lease_expires_at: null,
          finished_at: now as never,
          updated_at: now as never,
        }))
        .where('id', '=', id as string)
        .where('attempts', '=', attempt as never)
        .where('lease_owner', '=', owner as string)
        .where(
          'status',
          'in',
          fromStatuses.map((from) => sql.lit(from)),
        )
        .returning('id'),
  );
}
const completeSucceededTask = precompileCompleteTask(['running']);
const completeFailedTask = precompileCompleteTask(['leased', 'running']);

/** One finished run, as written by completeClaimedTasks. */
export interface CompletedRun {
  taskId: string;
  attempt: number;
  ok: boolean;
  /** The new status (succeeded / failed), from the task state machine. */
  status: TaskStatus;
  result: string | null;
  error: string | null;
  usage: { inputTokens: number; outputTokens: number; cacheReadTokens: number; costUsd: number };
  /** What the run spent per provider and model (LLM runtime), appended to `tasks.model_usage`. */
  modelUsage?: readonly ModelUsage[];
}

/** The JSON array a run's finish appends to `tasks.model_usage`; null when no model served it. */
function modelUsageJson(run: CompletedRun): string | null {
  return run.modelUsage?.length ? encodeModelUsage(run.modelUsage) : null;
}

// Runs per multi-row UPDATE: 11 bound values each.
const COMPLETE_CHUNK = 100;

/**
 * Writes the outcome of many runs of one lease owner with one `UPDATE … FROM (VALUES …)` per chunk
 * (SQLite ≥ 3.33 and PostgreSQL). Fenced per row by owner and attempt; a success also needs
 * `running`, a failure `leased` or `running`. Returns the ids actually updated. The spend per model
 * that each run's runtime held (store/task-model-usage.ts) is appended by the same UPDATE.
 */
export async function completeClaimedTasks(
  trx: Kysely<Database>,
  owner: string,
  runs: readonly CompletedRun[],
  now: number,
): Promise<Set<string>> {
  const updated = new Set<string>();
  // One row per task: a task listed twice in a batch (a replayed completion) is applied once.
  const unique = [...new Map(runs.map((run) => [run.taskId, run])).values()];
  if (unique.length === 1 || !isPostgres(trx)) {
    // SQLite (in-process, no round trips) and any single run: a plain precompiled UPDATE by id per
    // run. SQLite runs an UPDATE … FROM (VALUES) several times slower per row (it materialises the
    // VALUES first); PostgreSQL gets the multi-row form below to save round trips.
    for (const run of unique) {
      const complete = run.ok ? completeSucceededTask : completeFailedTask;
      const { rows } = await complete(
        trx,
        run.status,
        run.result,
        run.error,
        run.usage.inputTokens,
        run.usage.outputTokens,
        run.usage.cacheReadTokens,
        run.usage.costUsd,
        modelUsageJson(run),
        now,
        run.taskId,
        run.attempt,
        owner,
      );
      for (const row of rows) updated.add(row.id);
    }
    return updated;
  }
  for (let i = 0; i < unique.length; i += COMPLETE_CHUNK) {
    const values = unique
      .slice(i, i + COMPLETE_CHUNK)
      .map(
        (run) =>
          sql`(${run.taskId}, cast(${run.attempt} as integer), cast(${run.ok ? 1 : 0} as integer), ${run.status}, ${run.result}, ${run.error}, cast(${run.usage.inputTokens} as bigint), cast(${run.usage.outputTokens} as bigint), cast(${run.usage.cacheReadTokens} as bigint), cast(${run.usage.costUsd} as double precision), cast(${modelUsageJson(run)} as text))`,
      );
    const result = await sql<{ id: string }>`
      update tasks set
        status = v.column4, result = v.column5, error = v.column6,
        input_tokens = tasks.input_tokens + v.column7, output_tokens = tasks.output_tokens + v.column8,
        cache_read_tokens = tasks.cache_read_tokens + v.column9, cost_usd = tasks.cost_usd + v.column10,
        model_usage = ${appendModelUsageSql(sql.ref('tasks.model_usage'), sql.ref('v.column11'))},
        unsettled_usage = null, lease_owner = null, lease_expires_at = null, finished_at = ${now}, updated_at = ${now}
      from (values ${sql.join(values)}) as v
      where tasks.id = v.column1 and tasks.attempts = v.column2 and tasks.lease_owner = ${owner}
        and (tasks.status = 'running' or (v.column3 = 0 and tasks.status = 'leased'))
      returning tasks.id`.execute(trx);
    for (const row of result.rows) updated.add(row.id);
  }
  return updated;
}

/**
 * Stores that `taskId` depends on the named tasks of its session (names without a task id are
 * skipped): for tasks added to a running session (a new phase, an edited plan). `taskId` is a task
 * inserted in the same transaction: a session's edges change only with its tasks, which the
 * per-step graph read relies on (task-graph.ts, loadEdgesOfOne).
 */
export async function insertTaskDependencies(
  trx: Kysely<Database>,
  session: { id: string; tenantId: string },
  taskId: string,
  dependsOn: readonly string[],
  idByName: ReadonlyMap<string, string>,
): Promise<void> {
  const rows = dependsOn.flatMap((name) => {
    const dependsOnId = idByName.get(name);
    return dependsOnId
      ? [
          {
            task_id: taskId,
            depends_on_task_id: dependsOnId,
            session_id: session.id,
            tenant_id: session.tenantId,
          },
        ]
      : [];
  });
  if (rows.length > 0) await trx.insertInto('task_dependencies').values(rows).execute();
}
