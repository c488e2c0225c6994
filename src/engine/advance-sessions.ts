// Advance for many sessions at once: after tasks reached a terminal state in a batch, decide and
// write each session's next step (ready dependants, cancelled ones, usage, outcome, events) in the
// finishing transaction. The decision itself is the pure domain/advance.ts.
import type { Kysely } from 'kysely';
import { advanceSession } from '../domain/advance.ts';
import { type NewEvent, taskReadyEvent } from '../domain/events.ts';
import { isTerminalSessionStatus, transitionSession } from '../domain/session-state.ts';
import { transitionTask } from '../domain/task-state.ts';
import { addUsage, isZeroUsage, type SessionStatus, type TaskStatus, type Usage } from '../domain/types.ts';
import { precompileQuery } from '../store/compiled-query.ts';
import { appendEventsMany, type SessionEvents } from '../store/event-store.ts';
import { notifyAtCommit } from '../store/notify-at-commit.ts';
import { toUsage } from '../store/rows.ts';
import type { Database, SessionsTable, TasksTable } from '../store/schema.ts';
import { type GraphTask, loadSessionGraphs, loadTaskOutputs } from '../store/task-graph.ts';
import { startReadiedTasks } from '../store/task-store.ts';
import type { BudgetStopScope } from './engine-observer.ts';
import { applyInitialPlan, isPlanningGraph } from './initial-plan.ts';
import { sessionStopChannel } from './notifier.ts';
import { addTaskUsage, parseUnsettledUsage, recordCharge } from './run-spend.ts';
import { findBudgetOverruns, formatOverrun } from './session-budget.ts';
import { chargeTenantDays } from './tenant-usage-days.ts';

/**
 * Called in the finishing transaction when every task of a session has succeeded. Returning
 * `{ readied, events }` keeps the session running: the hook has inserted further (ready) tasks and
 * returns how many, plus events to append. `{ error }`: it wrote nothing and the session fails
 * with that error (a phase naming a role deleted meanwhile; `code` QUOTA_EXCEEDED: the tenant's
 * daily token quota). Seam for orchestrator-planned sessions (phase gates, synthesis).
 */
export type ContinueSession = (
  trx: Kysely<Database>,
  session: { id: string; tenantId: string },
  now: number,
) => Promise<{ readied: number; events: NewEvent[] } | { error: string; code?: 'QUOTA_EXCEEDED' } | null>;

/** Per-session changes gathered before advancing: events to append and usage to add. */
export interface Touched {
  tenantId: string;
  events: NewEvent[];
  usage: Usage;
}

export function zeroUsage(): Usage {
  return { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 };
}

export function touch(
  touched: Map<string, Touched>,
  claim: { sessionId: string; tenantId: string },
): Touched {
  let entry = touched.get(claim.sessionId);
  if (!entry) {
    entry = { tenantId: claim.tenantId, events: [], usage: zeroUsage() };
    touched.set(claim.sessionId, entry);
  }
  return entry;
}

/** Adds a batch's usage to the session row; returns its status and new totals. */
const addSessionUsage = precompileQuery<
  Database,
  Pick<
    SessionsTable,
    'tenant_id' | 'status' | 'input_tokens' | 'output_tokens' | 'cache_read_tokens' | 'cost_usd'
  >
>(6, (db, [inputTokens, outputTokens, cacheReadTokens, costUsd, now, sessionId]) =>
  db
    .updateTable('sessions')
    .set((eb) => ({
      input_tokens: eb('input_tokens', '+', inputTokens as never),
      output_tokens: eb('output_tokens', '+', outputTokens as never),
      cache_read_tokens: eb('cache_read_tokens', '+', cacheReadTokens as never),
      cost_usd: eb('cost_usd', '+', costUsd as never),
      updated_at: now as never,
    }))
    .where('id', '=', sessionId as string)
    .returning(['tenant_id', 'status', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cost_usd']),
);

/**
 * Adds `usage` to the session's (a run charged outside its task's finish: task-ops.ts) and to its
 * tenant's spend of today (tenant-usage-days.ts). `tenantId`, when the caller knows it, is charged
 * even when the session row is gone: a run still stopping when its (cancelled) session was deleted
 * has spent all the same. Returns the session's status, undefined when its row is gone.
 */
export async function chargeSessionUsage(
  trx: Kysely<Database>,
  sessionId: string,
  usage: Usage,
  now: number,
  tenantId?: string,
): Promise<SessionStatus | undefined> {
  const { rows } = await addSessionUsage(
    trx,
    usage.inputTokens,
    usage.outputTokens,
    usage.cacheReadTokens,
    usage.costUsd,
    now,
    sessionId,
  );
  const charged = rows[0]?.tenant_id ?? tenantId;
  if (charged !== undefined) await chargeTenantDays(trx, new Map([[charged, usage]]), now);
  return rows[0]?.status as SessionStatus | undefined;
}

// Ids per `IN (…)` list: well below SQLite's bound-variable limit.
const ID_CHUNK = 500;

/**
 * Lets the finishing process start tasks it readies itself, in the finishing transaction, instead
 * of marking them ready for a later claim: in a chain, the next step goes pending → running in the
 * UPDATE that would have made it ready, and the claim's scan, its UPDATEs and its event round trip
 * disappear. Only for free worker slots of this process (SQLite: one process owns the database).
 */
export interface HandOff {
  owner: string;
  leaseMs: number;
  /** Free worker slots of this process now. */
  capacity(): number;
  /**
   * Receives the rows started (status running, lease held by `owner`) and, per row, the tasks it
   * depends on as the graph lists them (in plan order), so outputs finished in this same
   * transaction need not be read back.
   */
  take(rows: TasksTable[], dependencies: ReadonlyMap<string, GraphTask[]>): void;
}

/**
 * Runs advance on every session in `touched` (some of whose tasks just reached a terminal state)
 * and writes the decisions: newly ready tasks, cancelled dependants, usage, session outcome, events.
 */
export async function advanceSessions(
  trx: Kysely<Database>,
  touched: Map<string, Touched>,
  now: number,
  continueSession?: ContinueSession,
  handOff?: HandOff,
): Promise<
  Map<string, { readied: number; sessionFinished: SessionStatus | null; budgetStop?: BudgetStopScope }>
> {
  const result = new Map<
    string,
    { readied: number; sessionFinished: SessionStatus | null; budgetStop?: BudgetStopScope }
  >();
  if (touched.size === 0) return result;
  const graphs = await loadSessionGraphs(trx, [...touched.keys()]);
  const ready: string[] = [];
  const outcomes = new Map<string, NonNullable<ReturnType<typeof advanceSession>['outcome']>>();
  // Sessions failing for a budget (their own, or their tenant's daily tokens): reported once they
  // have failed in this transaction, so a session counts once however many of its tasks stop.
  const budgetStops = new Map<string, BudgetStopScope>();
  const overruns = await findBudgetOverruns(trx, touched, now);
  // The batch's charges summed per tenant, added to the tenants' spend of today in one upsert as
  // the transaction's last statement: every finish of a tenant's tasks, on every replica, upserts
  // that tenant's one row of the day and holds its lock until commit, so it is taken last (the
  // finishes of other replicas queue on it for one statement and the commit, not the whole
  // advance). Earlier only when a session is about to go on through a phase gate, whose quota
  // check (continueSession) must count this batch.
  const charged = new Map<string, Usage>();
  for (const entry of touched.values()) {
    if (isZeroUsage(entry.usage)) continue;
    const sum = charged.get(entry.tenantId) ?? zeroUsage();
    addUsage(sum, entry.usage);
    charged.set(entry.tenantId, sum);
  }
  const chargeDays = async (): Promise<void> => {
    if (charged.size === 0) return;
    await chargeTenantDays(trx, charged, now);
    charged.clear();
  };
  for (const [sessionId, entry] of touched) {
    const overrun = overruns.get(sessionId);
    if (overrun !== undefined) {
      // Over budget (or the tenant's daily tokens): nothing more starts; open tasks are cancelled
      // (their runs here and on other replicas are stopped at commit, engine/session-stop.ts) and
      // the session fails.
      const error = formatOverrun(overrun);
      await cancelOpenTasks(trx, sessionId, error, now, entry.events);
      outcomes.set(sessionId, { status: 'failed', error });
      budgetStops.set(sessionId, overrun.code === 'QUOTA_EXCEEDED' ? 'tenant' : 'session');
      result.set(sessionId, { readied: 0, sessionFinished: null });
      continue;
    }
    let graph = graphs.get(sessionId) ?? [];
    let decision = advanceSession(graph);
    if (decision.outcome) {
      // The session ends: its result or failure summary needs the tasks' outputs and errors.
      const outputs = await loadTaskOutputs(trx, sessionId);
      graph = graph.map((task) => ({ ...task, ...outputs.get(task.id) }));
      decision = advanceSession(graph);
    }
    const byId = new Map(graph.map((task) => [task.id, task]));
    ready.push(...decision.ready);
    for (const id of decision.ready) {
      entry.events.push(taskReadyEvent(id, byId.get(id)!.name));
    }
    for (const { id, reason } of decision.cancel) {
      await trx
        .updateTable('tasks')
        .set({
          status: transitionTask('pending', 'cancel'),
          error: reason,
          finished_at: now,
          updated_at: now,
        })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .execute();
      entry.events.push({
        type: 'task.status',
        data: { taskId: id, name: byId.get(id)!.name, from: 'pending', to: 'cancelled', attempt: 0, reason },
      });
    }
    let readied = decision.ready.length;
    let outcome = decision.outcome;
    // The orchestrator's planning task succeeded: the session goes on with the plan it returned.
    const planned =
      outcome?.status === 'completed' && isPlanningGraph(graph)
        ? await applyInitialPlan(trx, { id: sessionId, tenantId: entry.tenantId }, graph[0]!, now)
        : null;
    if (planned && 'error' in planned) {
      outcome = { status: 'failed', error: planned.error };
    } else if (planned) {
      outcome = null;
      readied += planned.readied;
      entry.events.push(...planned.events);
    } else if (outcome?.status === 'completed' && continueSession) {
      // Orchestrated sessions continue (phase gate, next phase, synthesis) instead of completing.
      await chargeDays();
      const next = await continueSession(trx, { id: sessionId, tenantId: entry.tenantId }, now);
      if (next && 'error' in next) {
        outcome = { status: 'failed', error: next.error };
        if (next.code === 'QUOTA_EXCEEDED') budgetStops.set(sessionId, 'tenant');
      } else if (next) {
        outcome = null;
        readied += next.readied;
        entry.events.push(...next.events);
      }
    }
    if (outcome) outcomes.set(sessionId, outcome);
    result.set(sessionId, { readied, sessionFinished: null });
  }
  const startedRows = handOff ? await handOffReady(trx, ready, handOff, touched, graphs, now) : [];
  const started = new Set(startedRows.map((row) => row.id));
  const queued = started.size === 0 ? ready : ready.filter((id) => !started.has(id));
  for (let i = 0; i < queued.length; i += ID_CHUNK) {
    await trx
      .updateTable('tasks')
      .set({ status: transitionTask('pending', 'dependencies_met'), ready_at: now, updated_at: now })
      .where('id', 'in', queued.slice(i, i + ID_CHUNK))
      .where('status', '=', 'pending')
      .execute();
  }
  // Tasks this process started need no claim round: "readied" counts what others may claim.
  for (const row of startedRows) {
    const effect = result.get(row.session_id);
    if (effect) effect.readied--;
  }
  for (const [sessionId, entry] of touched) {
    const outcome = outcomes.get(sessionId);
    if (!outcome && isZeroUsage(entry.usage)) continue;
    const { rows } = await addSessionUsage(
      trx,
      entry.usage.inputTokens,
      entry.usage.outputTokens,
      entry.usage.cacheReadTokens,
      entry.usage.costUsd,
      now,
      sessionId,
    );
    const session = rows[0];
    if (!session) throw new Error(`session ${sessionId} vanished while advancing`);
    const from = session.status as SessionStatus;
    if (!outcome || isTerminalSessionStatus(from)) continue;
    const to = transitionSession(from, outcome.status === 'completed' ? 'complete' : 'fail');
    await trx
      .updateTable('sessions')
      .set({
        status: to,
        result: outcome.status === 'completed' ? outcome.result : null,
        error: outcome.status === 'failed' ? outcome.error : null,
        finished_at: now,
      })
      .where('id', '=', sessionId)
      .execute();
    entry.events.push(
      { type: 'session.status', data: { from, to } },
      {
        type: 'session.finished',
        data: {
          status: outcome.status,
          error: outcome.status === 'failed' ? outcome.error : null,
          result: outcome.status === 'completed' ? outcome.result : null,
          usage: toUsage(session),
        },
      },
    );
    const effect = result.get(sessionId)!;
    effect.sessionFinished = to;
    const budgetStop = budgetStops.get(sessionId);
    if (budgetStop) effect.budgetStop = budgetStop;
  }
  const batches: SessionEvents[] = [...touched].map(([sessionId, entry]) => ({
    session: { id: sessionId, tenantId: entry.tenantId },
    events: entry.events,
  }));
  await appendEventsMany(trx, batches, now);
  await chargeDays();
  return result;
}

/**
 * Starts up to `handOff.capacity()` of the readied tasks for this process (pending → running, as
 * ready → leased → running would, with the same events) and returns their rows.
 */
async function handOffReady(
  trx: Kysely<Database>,
  ready: readonly string[],
  handOff: HandOff,
  touched: Map<string, Touched>,
  graphs: ReadonlyMap<string, GraphTask[]>,
  now: number,
): Promise<TasksTable[]> {
  const capacity = Math.min(handOff.capacity(), ready.length, ID_CHUNK);
  if (capacity <= 0) return [];
  const rows = await startReadiedTasks(trx, ready.slice(0, capacity), {
    owner: handOff.owner,
    leaseMs: handOff.leaseMs,
    now,
  });
  for (const row of rows) {
    touched.get(row.session_id)?.events.push({
      type: 'task.status',
      data: { taskId: row.id, name: row.name, from: 'leased', to: 'running', attempt: Number(row.attempts) },
    });
  }
  handOff.take(rows, dependenciesOf(rows, graphs));
  return rows;
}

/** The graph's tasks each row depends on, in plan order; rows whose graph lacks one are left out. */
function dependenciesOf(
  rows: readonly TasksTable[],
  graphs: ReadonlyMap<string, GraphTask[]>,
): Map<string, GraphTask[]> {
  const result = new Map<string, GraphTask[]>();
  for (const row of rows) {
    const graph = graphs.get(row.session_id) ?? [];
    const task = graph.find((candidate) => candidate.id === row.id);
    if (!task) continue;
    const names = new Set(task.dependsOn);
    const dependencies = graph.filter((candidate) => names.has(candidate.name));
    if (dependencies.length === names.size) result.set(row.id, dependencies);
  }
  return result;
}

/**
 * Cancels every unfinished task of the session (pending, ready, leased, running), with events. The
 * spend a running attempt recorded (engine/run-spend.ts) is charged here, to its task (under the
 * models it recorded) and the session: its process may be dead, and nobody else would. A live run then charges only what it
 * spent beyond that record. Returns what was charged. Call with the session locked (lockSessions).
 */
export async function cancelOpenTasks(
  trx: Kysely<Database>,
  sessionId: string,
  reason: string,
  now: number,
  events: NewEvent[],
): Promise<Usage> {
  const settled = zeroUsage();
  const open = await trx
    .selectFrom('tasks')
    .select(['id', 'name', 'status', 'attempts', 'lease_owner', 'unsettled_usage'])
    .where('session_id', '=', sessionId)
    .where('status', 'in', ['pending', 'ready', 'leased', 'running'])
    .orderBy('position')
    .execute();
  if (open.length === 0) return settled;
  // Runs of these tasks may be going on other replicas: at commit, every replica running one stops
  // it (engine/session-stop.ts) instead of at its next lease renewal. While PostgreSQL's
  // notification queue is full the notification is left out and the cancel commits without it:
  // those runs stop at their lease renewal then (store/notify-at-commit.ts).
  if (open.some((task) => task.status === 'leased' || task.status === 'running')) {
    await notifyAtCommit(trx, sessionStopChannel(sessionId));
  }
  for (const task of open) {
    const record = parseUnsettledUsage(task.unsettled_usage);
    if (!record || record.attempt !== Number(task.attempts) || record.owner !== task.lease_owner) continue;
    const charge = recordCharge(record);
    await addTaskUsage(trx, task.id, charge.usage, now, charge.models);
    addUsage(settled, record.usage);
  }
  if (!isZeroUsage(settled)) await chargeSessionUsage(trx, sessionId, settled, now);
  await trx
    .updateTable('tasks')
    .set({
      status: 'cancelled',
      error: reason,
      lease_owner: null,
      lease_expires_at: null,
      unsettled_usage: null,
      finished_at: now,
      updated_at: now,
    })
    .where(
      'id',
      'in',
      open.map((task) => task.id),
    )
    .execute();
  for (const task of open) {
    events.push({
      type: 'task.status',
      data: {
        taskId: task.id,
        name: task.name,
        from: task.status as TaskStatus,
        to: 'cancelled',
        attempt: Number(task.attempts),
        reason,
      },
    });
  }
  return settled;
}
