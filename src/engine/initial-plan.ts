// The first plan of a session submitted without agents: the orchestrator's `plan` task produced
// it; applying it (plan version 1, the phases' agents, tasks and dependencies, planning → running
// or awaiting_approval) happens in the transaction that finishes that task (advance-sessions.ts).

import type { Kysely } from 'kysely';
import { deletedRolesError, findMissingRoles } from '../agents/roles/role-locks.ts';
import type { NewEvent } from '../domain/events.ts';
import { transitionSession } from '../domain/session-state.ts';
import type { PlanBody } from '../domain/types.ts';
import type { Database } from '../store/schema.ts';
import { insertPlannedRows } from '../store/session-store.ts';
import type { GraphTask } from '../store/task-graph.ts';
import { buildPlannedRows } from './create-session.ts';
import { INITIAL_PLAN_TASK_NAME, ORCHESTRATOR_ROLE } from './planner-continuation.ts';
import { storePlanVersion } from './planner-plan-versions.ts';
import { loadApprovalMode } from './session-settings.ts';

/** What applying the first plan did: the tasks it made ready and the events to append. */
export type InitialPlanOutcome = { readied: number; events: NewEvent[] } | { error: string };

/**
 * Whether the session's tasks are only its planning task: when that task has succeeded, the
 * session goes on with the plan instead of completing. Decided from the graph already read.
 */
export function isPlanningGraph(graph: readonly GraphTask[]): boolean {
  const only = graph.length === 1 ? graph[0] : undefined;
  return only?.name === INITIAL_PLAN_TASK_NAME && only.role === ORCHESTRATOR_ROLE;
}

/** The plan in a planning task's result, or null when the result is not one. */
function parsePlan(result: string | null | undefined): PlanBody | null {
  try {
    const plan = JSON.parse(result ?? '') as PlanBody;
    const wellFormed =
      Array.isArray(plan?.phases) &&
      plan.phases.length > 0 &&
      plan.phases.every((phase) => Array.isArray(phase.tasks) && phase.tasks.length > 0);
    return wellFormed ? plan : null;
  } catch {
    return null;
  }
}

/** The roles of a plan's tasks. */
function planRoles(plan: PlanBody): string[] {
  return plan.phases.flatMap((phase) => phase.tasks.map((task) => task.role));
}

/**
 * Stores the planning task's result as plan version 1 and inserts its phases as a submitted plan's
 * are inserted; the session goes `planning → running`, or `planning → awaiting_approval` (tasks
 * stored, none ready) when it needs approval. Null when the session is no longer planning; an
 * error (nothing written) when the plan is not one, or names a custom role deleted since.
 */
export async function applyInitialPlan(
  trx: Kysely<Database>,
  session: { id: string; tenantId: string },
  planTask: { id: string; position: number; result?: string | null },
  now: number,
): Promise<InitialPlanOutcome | null> {
  const row = await trx
    .selectFrom('sessions')
    .select(['status'])
    .where('id', '=', session.id)
    .where('tenant_id', '=', session.tenantId)
    .executeTakeFirst();
  if (row?.status !== 'planning') return null;
  const plan = parsePlan(planTask.result);
  if (!plan) return { error: 'INVALID_PLAN: the planning task returned no plan' };
  // The planned tasks get the attempts the planning task was given (the engine's setting then).
  const task = await trx
    .selectFrom('tasks')
    .select('max_attempts')
    .where('id', '=', planTask.id)
    .executeTakeFirstOrThrow();
  const awaitApproval = (await loadApprovalMode(trx, session.id)) === 'required';
  // The planner checked the roles before its answer; one deleted since would fail the tasks when
  // they start. Checked (and locked, role-locks.ts) here, where the tasks are written. A plan that
  // waits for approval is checked when it is approved, and can be edited then.
  const missing = awaitApproval ? [] : await findMissingRoles(trx, session.tenantId, planRoles(plan));
  if (missing.length > 0) {
    const tasks = plan.phases.flatMap((phase) => phase.tasks);
    return { error: deletedRolesError(missing, tasks, 'The first plan') };
  }
  const rows = buildPlannedRows({
    tenantId: session.tenantId,
    sessionId: session.id,
    plan,
    maxAttempts: Number(task.max_attempts),
    awaitApproval,
    runtimeOf: (runner) => (runner === undefined ? 'llm' : 'command'),
    firstPosition: planTask.position + 1,
    now,
  });
  await insertPlannedRows(trx, rows);
  await storePlanVersion(trx, session.tenantId, session.id, plan, now);
  const to = transitionSession('planning', awaitApproval ? 'await_approval' : 'start');
  await trx
    .updateTable('sessions')
    .set({ status: to, ...(to === 'running' ? { started_at: now } : {}), updated_at: now })
    .where('id', '=', session.id)
    .execute();
  return {
    readied: rows.readyEvents.length,
    events: [{ type: 'session.status', data: { from: 'planning', to } }, ...rows.readyEvents],
  };
}
