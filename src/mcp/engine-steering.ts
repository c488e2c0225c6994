// SessionSteering over the engine's approval and steering operations, used by the MCP tools and the
// REST steering routes (src/http/routes/session-steering.ts) alike. The transaction wrapper belongs
// in the engine once SessionService grows approve/reject/message operations; then this file goes away.
import type { Kysely } from 'kysely';
import type { LlmDb } from '../agents/providers/llm-tables.ts';
import type { RoleService } from '../agents/roles/role-service.ts';
import type { RuntimeRegistry } from '../agents/runtimes/runtime.ts';
import type { Config } from '../config/schema.ts';
import { type EngineObserver, notifyObserver } from '../engine/engine-observer.ts';
import { type Notifier, READY_CHANNEL, sessionChannel } from '../engine/notifier.ts';
import type { EditedPlanRules } from '../engine/planner-approval.ts';
import { approvePlan, rejectPlan } from '../engine/planner-approval-store.ts';
import { addSteeringMessage } from '../engine/planner-steering.ts';
import type { CheckTenantDailyTokens } from '../engine/tenant-usage-days.ts';
import { AppError } from '../errors/app-error.ts';
import { appendEvents } from '../store/event-store.ts';
import type { Database } from '../store/schema.ts';
import { lockSessions } from '../store/session-locks.ts';
import type { SessionSteering } from './steering-tools.ts';

export interface EngineSteeringOptions {
  db: Kysely<Database>;
  /**
   * Rules an edited plan must meet for the tenant (roles include its custom ones), read through `db`:
   * the approval's transaction, after the session lock, so a custom role deleted meanwhile is seen.
   */
  planRules(tenantId: string, db: Kysely<Database>): Promise<EditedPlanRules>;
  maxAttempts: number;
  /** Called after a change that readied tasks or appended events (wake workers and readers). */
  onChanged?(sessionId: string): void;
  /** The tenant daily token quota: a steering message over it is refused (QUOTA_EXCEEDED). */
  checkTenantDailyTokens?: CheckTenantDailyTokens;
  /** The engine's observer: a rejected plan ends its session (maos_sessions_finished_total). */
  observer?: EngineObserver;
  /** The clock (tests: an approval after the deadline, before the sweep); `Date.now` by default. */
  now?: () => number;
}

/** A plan approved or rejected after its session's deadline: the session failed with `expired`. */
function deadlinePassed(what: 'approval' | 'reject', expired: string): AppError {
  return new AppError(
    'INVALID_STATE',
    `The session's deadline passed before the ${what}: it failed with ${expired}`,
    { details: { status: 'failed', code: 'BUDGET_EXCEEDED', error: expired } },
  );
}

/** Builds the steering operations (MCP tools and REST routes). */
export function createEngineSteering(options: EngineSteeringOptions): SessionSteering {
  const { db } = options;
  const now = options.now ?? Date.now;
  return {
    async approvePlan(actor, sessionId, editedPlan, planVersion) {
      const session = { id: sessionId, tenantId: actor.tenantId };
      const result = await db.transaction().execute(async (trx) => {
        // The roles are read after the session lock, in this transaction: read before it, a custom
        // role deleted in between (allowed while the plan waits) passed the check, and the session
        // started with tasks that fail with an unknown role. deleteRole locks the sessions with
        // unfinished tasks of the role, so on PostgreSQL the two go one after the other.
        await lockSessions(trx, [sessionId], actor.tenantId);
        const rules = await options.planRules(actor.tenantId, trx);
        const approved = await approvePlan(
          trx,
          session,
          {
            editedPlan,
            rules,
            maxAttempts: options.maxAttempts,
            ...(planVersion === undefined ? {} : { planVersion }),
          },
          now(),
        );
        await appendEvents(trx, session, approved.events, now());
        return approved;
      });
      options.onChanged?.(sessionId);
      if (result.expired !== undefined) {
        // Ended as the deadline sweep ends a session; answered as an approval of a session that has
        // already failed is, with why it failed.
        notifyObserver(options.observer, 'sessionFinished', 'failed');
        notifyObserver(options.observer, 'budgetExceeded', 'session');
        throw deadlinePassed('approval', result.expired);
      }
      return { planVersion: result.planVersion, readied: result.readied, renamedTasks: result.renamedTasks };
    },
    async rejectPlan(actor, sessionId, reason, planVersion) {
      const session = { id: sessionId, tenantId: actor.tenantId };
      const result = await db.transaction().execute(async (trx) => {
        const rejected = await rejectPlan(trx, session, reason, now(), planVersion);
        await appendEvents(trx, session, rejected.events, now());
        return rejected;
      });
      notifyObserver(options.observer, 'sessionFinished', 'failed');
      options.onChanged?.(sessionId);
      if (result.expired !== undefined) {
        // Ended by its deadline, as an approval then is: answered as the approval would be.
        notifyObserver(options.observer, 'budgetExceeded', 'session');
        throw deadlinePassed('reject', result.expired);
      }
    },
    async sendMessage(actor, sessionId, message) {
      const stored = await addSteeringMessage(
        db,
        actor.tenantId,
        sessionId,
        message,
        Date.now(),
        options.checkTenantDailyTokens,
      );
      options.onChanged?.(sessionId);
      return stored;
    },
  };
}

/**
 * The steering of a server with an LLM orchestrator: edited plans are checked against the tenant's
 * roles (read in the approval's transaction, so a role deleted meanwhile is seen), the declared
 * runners and those the tenant may use, and a change wakes the workers and the session's event readers.
 */
export function createOrchestratorSteering(options: {
  config: Readonly<Pick<Config, 'llm' | 'tasks'>>;
  db: Kysely<Database>;
  roles: Pick<RoleService, 'listRoles'>;
  runtimes: Pick<RuntimeRegistry, 'hasRunner' | 'mayUseRunner'>;
  notifier: Pick<Notifier, 'publish'>;
  checkTenantDailyTokens?: CheckTenantDailyTokens;
  observer?: EngineObserver;
}): SessionSteering {
  const { config, roles, runtimes, notifier } = options;
  return createEngineSteering({
    db: options.db,
    planRules: async (tenantId, trx) => {
      const names = new Set(
        (await roles.listRoles(tenantId, trx as unknown as LlmDb)).map((role) => role.name),
      );
      return {
        isKnownRole: (role: string) => names.has(role),
        isKnownRunner: (runner: string) => runtimes.hasRunner(runner),
        mayUseRunner: (runner: string) => runtimes.mayUseRunner(tenantId, runner),
        maxAgentsPerRole: config.llm.planner.maxAgentsPerRole,
        maxTasksPerPhase: config.llm.planner.maxTasksPerPhase,
      };
    },
    maxAttempts: config.tasks.maxAttempts,
    ...(options.checkTenantDailyTokens ? { checkTenantDailyTokens: options.checkTenantDailyTokens } : {}),
    ...(options.observer ? { observer: options.observer } : {}),
    onChanged: (sessionId) => {
      notifier.publish(READY_CHANNEL);
      notifier.publish(sessionChannel(sessionId));
    },
  });
}
