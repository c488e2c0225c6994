// Plan versions of a session (table `plans`): listing them with the diff to the previous version
// (GET /v1/sessions/:id/plans) and storing an edited plan as the next version at approval.

import type { Kysely } from 'kysely';
import type { PlanBody } from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';
import { type DamagedJsonReport, IGNORE_DAMAGED_JSON, parseStoredPlan } from '../store/rows.ts';
import type { Database } from '../store/schema.ts';
import { getSessionRow } from '../store/session-store.ts';
import { stringifyForStore } from '../store/storable-text.ts';
import { diffPlans, type PlanDiff } from './planner-approval.ts';
import type { OrchestratedPlanBody } from './planner-continuation.ts';

export interface PlanVersion {
  version: number;
  /**
   * Null when the stored body cannot be read (a hand edit of `plans.body` gone wrong): the version
   * is still listed, as the session's document shows such a plan as null.
   */
  plan: PlanBody | null;
  createdAt: number;
  /** Changes against the previous version; null for the first one, and when it or the previous one cannot be read. */
  diff: PlanDiff | null;
}

/**
 * Every plan version of the session, oldest first. SESSION_NOT_FOUND for another tenant's session.
 * A version whose body cannot be read is listed with `plan: null`, and `report` (the engine's) is
 * told of it; the others are listed as stored.
 */
export async function listPlanVersions(
  db: Kysely<Database>,
  tenantId: string,
  sessionId: string,
  report: DamagedJsonReport,
): Promise<PlanVersion[]> {
  await getSessionRow(db, tenantId, sessionId);
  const rows = await db
    .selectFrom('plans')
    .select(['version', 'body', 'created_at'])
    .where('tenant_id', '=', tenantId)
    .where('session_id', '=', sessionId)
    .orderBy('version')
    .execute();
  let previous: PlanBody | null = null;
  return rows.map((row) => {
    const plan = parseStoredPlan(row.body, sessionId, report) ?? null;
    const version: PlanVersion = {
      version: row.version,
      plan,
      createdAt: Number(row.created_at),
      diff: plan && previous ? diffPlans(previous, plan) : null,
    };
    previous = plan;
    return version;
  });
}

/** The session's latest plan version as loadLatestPlan reads it. */
export interface LatestPlan {
  /** The plan; undefined when the session has no plan version yet, or its latest cannot be read. */
  plan: OrchestratedPlanBody | undefined;
  /** The latest version's number (0: none yet). */
  version: number;
  /** True when the latest version is stored but cannot be read (`plan` is then undefined). */
  unreadable: boolean;
}

/**
 * The session's latest plan version (the caller has checked the tenant). One that cannot be read (a
 * hand edit of `plans.body` gone wrong: not JSON, or no plan as parseStoredPlan reads one) is told,
 * not thrown: this is read in the batch of finishes that ends the session's last task, where a throw
 * rolled back the finishes of every session in the batch, again at each try, and in approvals and
 * steering, which answered a 500. Its origin mark is lost with it: whether the orchestrator plans
 * the session is then told by its tasks (planner-continuation.ts isOrchestratorPlanned). The
 * session's document tells the operator of it.
 */
export async function loadLatestPlan(db: Kysely<Database>, sessionId: string): Promise<LatestPlan> {
  const row = await db
    .selectFrom('plans')
    .select(['version', 'body'])
    .where('session_id', '=', sessionId)
    .orderBy('version', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!row) return { plan: undefined, version: 0, unreadable: false };
  // As the session's document and its plan versions read it: phases without their tasks are no
  // plan either (an approval walks every task of the waiting plan).
  const plan = parseStoredPlan(row.body, sessionId, IGNORE_DAMAGED_JSON) as OrchestratedPlanBody | undefined;
  return { plan, version: Number(row.version), unreadable: plan === undefined };
}

/**
 * Stores `plan` as the session's next version and bumps `sessions.plan_version`, inside the
 * caller's transaction (the engine's approval transaction). Returns the new version number.
 */
export async function storePlanVersion(
  trx: Kysely<Database>,
  tenantId: string,
  sessionId: string,
  plan: PlanBody,
  now: number,
): Promise<number> {
  const session = await trx
    .updateTable('sessions')
    .set((eb) => ({ plan_version: eb('plan_version', '+', 1), updated_at: now }))
    .where('tenant_id', '=', tenantId)
    .where('id', '=', sessionId)
    .returning('plan_version')
    .executeTakeFirst();
  if (!session) throw new AppError('SESSION_NOT_FOUND', `Session ${sessionId} not found`);
  const version = Number(session.plan_version);
  await trx
    .insertInto('plans')
    .values({
      session_id: sessionId,
      version,
      tenant_id: tenantId,
      body: stringifyForStore(plan),
      created_at: now,
    })
    .execute();
  return version;
}
