// The SessionService implementation: validation at submit (a session without agents is stored with
// the orchestrator's `plan` task), tenant-scoped reads, cancellation, deletion and event access.
// Writes go through the group-commit write queue.
import type { Kysely } from 'kysely';
import type { z } from 'zod';
import { findBuiltInRole } from '../agents/roles/catalogue.ts';
import type { RuntimeRegistry } from '../agents/runtimes/runtime.ts';
import { mergeBudgets } from '../domain/budget.ts';
import type { NewEvent } from '../domain/events.ts';
import { buildPlan, resolveStrategy } from '../domain/plan.ts';
import { checkRunnerAccess, runnerNotAllowed } from '../domain/runner-access.ts';
import {
  createSessionInputSchema,
  IDEMPOTENCY_KEY_PATTERN,
  IDEMPOTENCY_KEY_RULE,
  retrySessionInputSchema,
} from '../domain/session-input.ts';
import { isTerminalSessionStatus, transitionSession } from '../domain/session-state.ts';
import {
  addUsage,
  type PlanBody,
  type SessionDetail,
  type SessionStatus,
  type Strategy,
} from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';
import { startSessionTrace } from '../observability/session-trace.ts';
import { appendEvents, listSessionEvents, listSessionEventsBefore } from '../store/event-store.ts';
import { newId } from '../store/ids.ts';
import { type DamagedJsonReport, toUsage } from '../store/rows.ts';
import type { Database } from '../store/schema.ts';
import { lockSessions } from '../store/session-locks.ts';
import { getSessionDetail, getSessionRow, listSessionRecords } from '../store/session-store.ts';
import type { WriteQueue } from '../store/write-queue.ts';
import type { ContinueSession } from './advance-sessions.ts';
import { cancelOpenTasks } from './advance-sessions.ts';
import { findIdempotentSession, hashRequest, storeNewSession } from './create-session.ts';
import { deleteFinishedSession } from './delete-session.ts';
import { type EngineObserver, notifyObserver } from './engine-observer.ts';
import type { EngineDeps, Planner } from './engine-types.ts';
import { type Notifier, READY_CHANNEL, sessionChannel } from './notifier.ts';
import { assertRetryableStatus, storeSessionRetry } from './retry-session.ts';
import { createSessionDetailReader } from './session-detail-cache.ts';
import type { SessionService } from './session-service.ts';

/** Largest page of events per call. */
const MAX_EVENT_PAGE = 1000;
/** Largest page of sessions per call (the HTTP layer applies its own, smaller, limit too). */
const MAX_SESSION_PAGE = 1000;

export interface SessionServiceDeps {
  db: Kysely<Database>;
  /** Told of a session's stored JSON that cannot be read (the engine's, on its logger). */
  reportDamagedJson: DamagedJsonReport;
  queue: WriteQueue;
  notifier: Notifier;
  runtimes: RuntimeRegistry;
  maxAttempts: number;
  observer?: EngineObserver;
  planner?: Planner;
  /** Looks up a tenant's custom role; without it only built-in roles are accepted. */
  findRole?: EngineDeps['findRole'];
  /** Tenant defaults for approval and budget. */
  sessionDefaults?: EngineDeps['sessionDefaults'];
  /** Called after a session was cancelled, to abort this process's running tasks of it. */
  onCancelled(sessionId: string): void;
  /**
   * Called right after a new session's insert was queued (before it commits): the engine queues a
   * claim behind it, so the session's first tasks are claimed in the same commit (one fsync less).
   */
  onSessionQueued?(): void;
  /** Starts each new session's trace (stored with it); absent when tracing is off. */
  genAi?: EngineDeps['genAi'];
  /** Tenant quotas, checked in the insert's transaction (see create-session.ts `admit`). */
  admitSession?: EngineDeps['admitSession'];
  /** Copies the original's workspace for a retry; returns the undo (see EngineDeps.onSessionRetry). */
  onRetry?: (fromId: string, toId: string) => Promise<() => Promise<void>>;
  /** Orchestrated sessions' next step (phase gate, synthesis), for a retry with nothing left to run. */
  continueSession?: ContinueSession;
  /** Run after a deletion, before the call returns; never rejects (the engine guards it). */
  onDeleted?: (sessionId: string) => Promise<void>;
  now?: () => number;
}

export function createSessionService(deps: SessionServiceDeps): SessionService {
  const now = deps.now ?? Date.now;
  const admitSession = deps.admitSession;
  const details = createSessionDetailReader(deps.reportDamagedJson);
  /** Plan checkers for one tenant: built-in roles, plus the tenant's custom roles among `roleNames`. */
  async function checkersFor(tenantId: string, roleNames: Iterable<string>) {
    const custom = new Set<string>();
    if (deps.findRole) {
      for (const name of new Set(roleNames)) {
        if (findBuiltInRole(name) === undefined && (await deps.findRole(tenantId, name)) !== undefined) {
          custom.add(name);
        }
      }
    }
    return {
      isKnownRole: (role: string) => findBuiltInRole(role) !== undefined || custom.has(role),
      isKnownRunner: (runner: string) => deps.runtimes.hasRunner(runner),
      mayUseRunner: (runner: string) => deps.runtimes.mayUseRunner(tenantId, runner),
    };
  }

  /**
   * The plan of a session the caller planned (explicit agents), or null when the orchestrator plans
   * it: the session is then stored with a `plan` task the engine runs like any other task.
   */
  async function planSession(
    tenantId: string,
    input: ReturnType<typeof createSessionInputSchema.parse>,
  ): Promise<{ strategy: ReturnType<typeof resolveStrategy>; plan: PlanBody | null }> {
    const agents = input.agents ?? [];
    const strategy = resolveStrategy(input.strategy, agents);
    if (strategy === 'adaptive' && agents.length > 0) {
      // The orchestrator plans every phase of an adaptive session: agents given here would be dropped.
      throw new AppError(
        'VALIDATION_FAILED',
        'Strategy adaptive is planned by the orchestrator phase by phase, so it takes no agents: leave them out, or run your agents with parallel, sequential or pipeline',
      );
    }
    if (agents.length === 0 && (strategy === 'parallel' || strategy === 'sequential')) {
      // They order the agents a caller gives; the orchestrator's plan carries its own dependencies.
      throw new AppError(
        'VALIDATION_FAILED',
        `Strategy ${strategy} orders the agents you give; without agents the orchestrator plans the tasks and their dependencies: leave strategy out (or use pipeline or adaptive)`,
      );
    }
    if (agents.length > 0) {
      const checkers = await checkersFor(
        tenantId,
        agents.map((agent) => agent.role),
      );
      return { strategy, plan: buildPlan(strategy, agents, checkers) };
    }
    if (!deps.planner) {
      throw new AppError(
        'INVALID_PLAN',
        strategy === 'adaptive'
          ? 'Strategy adaptive needs the LLM orchestrator, and no LLM provider is configured; use parallel, sequential or pipeline with explicit agents'
          : 'No agents were given and no LLM provider is configured to plan them; list the agents explicitly',
      );
    }
    return { strategy, plan: null };
  }

  /** The session an earlier request with this Idempotency-Key stored, as a replay's answer. */
  async function readReplay(
    tenantId: string,
    idempotency: { key: string; hash: string },
  ): Promise<{ session: SessionDetail; created: false } | null> {
    const existing = await findIdempotentSession(deps.db, tenantId, idempotency);
    if (!existing) return null;
    return {
      session: await details.withSettings(
        deps.db,
        await getSessionDetail(deps.db, tenantId, existing, deps.reportDamagedJson),
      ),
      created: false,
    };
  }

  /**
   * A write that failed on the Idempotency-Key's unique index: in cluster mode another replica
   * stored the same key between our check and our insert, and its session is the answer.
   */
  async function afterKeyRace(
    error: unknown,
    tenantId: string,
    idempotency: { key: string; hash: string } | undefined,
  ): Promise<{ sessionId: string; created: false; readied: 0; detail: null; finished: null }> {
    if (!idempotency || !isUniqueViolation(error)) throw error;
    const existing = await findIdempotentSession(deps.db, tenantId, idempotency);
    if (!existing) throw error;
    return { sessionId: existing, created: false, readied: 0, detail: null, finished: null };
  }

  /**
   * VALIDATION_FAILED unless a task to run again in a retry can run on this server; RUNNER_NOT_ALLOWED
   * for a runner the tenant may no longer use.
   */
  function checkRunnable(
    tenantId: string,
    tasks: ReadonlyArray<{ name: string; kind: string; runner: string | null }>,
  ): void {
    const refuse = (task: { name: string }, why: string) => {
      throw new AppError('VALIDATION_FAILED', `Task ${task.name} cannot run again: ${why}`, {
        details: { task: task.name },
      });
    };
    for (const task of tasks) {
      if (task.kind !== 'agent') {
        if (!deps.planner) refuse(task, 'it is the orchestrator’s, and no LLM provider is configured');
      } else if (task.runner !== null) {
        if (!deps.runtimes.hasRunner(task.runner)) {
          refuse(task, `its runner ${task.runner} is not declared in the server config any more`);
        }
        const refused = checkRunnerAccess([task], (runner) => deps.runtimes.mayUseRunner(tenantId, runner));
        if (refused) throw runnerNotAllowed(refused);
      } else if (!deps.runtimes.hasLlm()) {
        refuse(task, 'it runs on the LLM, and no LLM provider is configured');
      }
    }
  }

  return {
    async createSession(actor, rawInput, idempotencyKey) {
      const input = parseInput(createSessionInputSchema, rawInput, 'Invalid session');
      const idempotency = idempotencyOf(idempotencyKey, rawInput);
      if (idempotency) {
        // A replay answers with the session stored first; the write below re-checks under the lock.
        const replay = await readReplay(actor.tenantId, idempotency);
        if (replay) return replay;
      }
      const defaults = deps.sessionDefaults?.(actor.tenantId);
      const approval = input.approval ?? defaults?.approval ?? 'none';
      const budget = mergeBudgets(input.budget, defaults?.budget);
      if (approval === 'required' && !deps.planner) {
        // The approve/reject routes come with the orchestrator; without it nothing could start the session.
        throw new AppError(
          'VALIDATION_FAILED',
          'approval "required" needs an LLM provider to be configured (the approval routes come with the orchestrator)',
        );
      }
      const sessionId = newId();
      const { strategy, plan } = await planSession(actor.tenantId, input);
      // The session's trace: its tasks' spans, the orchestrator's planning task first, continue it.
      const traceContext = deps.genAi
        ? startSessionTrace(deps.genAi, { id: sessionId, strategy })
        : undefined;
      const llmTasks = (plan?.phases ?? [])
        .flatMap((phase) => phase.tasks)
        .filter((task) => task.runner === undefined);
      if (llmTasks.length > 0 && !deps.runtimes.hasLlm()) {
        throw new AppError(
          'VALIDATION_FAILED',
          `Task ${llmTasks.map((task) => task.name).join(', ')} gives no runner and no LLM provider is configured: name a runner declared in the server config, or configure a provider`,
          { details: { tasks: llmTasks.map((task) => task.name) } },
        );
      }
      const storing = deps.queue
        .run((trx) =>
          storeNewSession(
            trx,
            {
              sessionId,
              tenantId: actor.tenantId,
              objective: input.objective,
              strategy,
              metadata: input.metadata ?? {},
              plan,
              maxAttempts: deps.maxAttempts,
              awaitApproval: approval === 'required',
              settings: {
                approval,
                budget: Object.keys(budget).length > 0 ? budget : null,
                threadId: input.thread_id ?? null,
              },
              ...(input.budget ? { requestedBudget: input.budget } : {}),
              runtimeOf: (runner) => (runner === undefined ? 'llm' : 'command'),
              ...(traceContext ? { traceContext } : {}),
              ...(admitSession ? { admit: (trx) => admitSession(trx, actor.tenantId) } : {}),
            },
            idempotency,
            now(),
          ),
        )
        .catch((error: unknown) => afterKeyRace(error, actor.tenantId, idempotency));
      deps.onSessionQueued?.();
      const stored = await storing;
      if (stored.created) {
        notifyObserver(deps.observer, 'sessionStarted');
        if (stored.readied > 0) deps.notifier.publish(READY_CHANNEL);
      }
      // A new session's detail carries the settings it was stored with; a replay's is read.
      const session =
        stored.detail ??
        (await details.withSettings(
          deps.db,
          await getSessionDetail(deps.db, actor.tenantId, stored.sessionId, deps.reportDamagedJson),
        ));
      return { session, created: stored.created };
    },

    async retrySession(actor, originalId, rawInput, idempotencyKey) {
      const input = parseInput(retrySessionInputSchema, rawInput, 'Invalid retry');
      const idempotency = idempotencyOf(idempotencyKey, { retryOf: originalId, ...input });
      if (idempotency) {
        const replay = await readReplay(actor.tenantId, idempotency);
        if (replay) return replay;
      }
      const defaults = deps.sessionDefaults?.(actor.tenantId);
      const sessionId = newId();
      const original = await getSessionRow(deps.db, actor.tenantId, originalId);
      // Refused before its workspace is copied; the transaction checks every condition again.
      assertRetryableStatus(originalId, original.status as SessionStatus, (input.rerun?.length ?? 0) > 0);
      const undoCopy = (await deps.onRetry?.(originalId, sessionId)) ?? (async () => {});
      const traceContext = deps.genAi
        ? startSessionTrace(deps.genAi, { id: sessionId, strategy: original.strategy as Strategy })
        : undefined;
      const storing = deps.queue
        .run((trx) =>
          storeSessionRetry(
            trx,
            {
              tenantId: actor.tenantId,
              originalId,
              sessionId,
              maxAttempts: deps.maxAttempts,
              settingsOf: (settings, requestedBudget) => {
                // The session's own budget (the retry's, or the one the original asked for), capped
                // by the tenant's budget as it is now, as a submit is: one set, tightened or loosened
                // since the original was submitted applies to its retry.
                const own = input.budget ?? requestedBudget ?? null;
                const budget = mergeBudgets(own ?? undefined, defaults?.budget);
                return {
                  settings: { ...settings, budget: Object.keys(budget).length > 0 ? budget : null },
                  requestedBudget: own,
                };
              },
              checkRunnable: (tasks) => checkRunnable(actor.tenantId, tasks),
              reportDamagedJson: deps.reportDamagedJson,
              ...(input.rerun ? { rerun: input.rerun } : {}),
              ...(traceContext ? { traceContext } : {}),
              ...(admitSession ? { admit: (trx) => admitSession(trx, actor.tenantId) } : {}),
              ...(deps.continueSession ? { continueSession: deps.continueSession } : {}),
            },
            idempotency,
            now(),
          ),
        )
        .catch((error: unknown) => afterKeyRace(error, actor.tenantId, idempotency));
      deps.onSessionQueued?.();
      const stored = await storing.catch(async (error: unknown) => {
        await undoCopy();
        throw error;
      });
      if (!stored.created) {
        await undoCopy();
      } else {
        notifyObserver(deps.observer, 'sessionStarted');
        if (stored.finished) notifyObserver(deps.observer, 'sessionFinished', stored.finished);
        if (stored.readied > 0) deps.notifier.publish(READY_CHANNEL);
        deps.notifier.publish(sessionChannel(stored.sessionId));
      }
      const session = await details.withSettings(
        deps.db,
        await getSessionDetail(deps.db, actor.tenantId, stored.sessionId, deps.reportDamagedJson),
      );
      return { session, created: stored.created };
    },

    getSession: (actor, sessionId) => details.read(deps.db, actor.tenantId, sessionId),
    getSessionOverview: (actor, sessionId) => details.readOverview(deps.db, actor.tenantId, sessionId),

    listSessions(actor, query) {
      const limit = Math.min(Math.max(1, Math.trunc(query.limit) || 1), MAX_SESSION_PAGE);
      return listSessionRecords(deps.db, actor.tenantId, { ...query, limit }, deps.reportDamagedJson);
    },

    async cancelSession(actor, sessionId) {
      const cancelled = await deps.queue.run((trx) =>
        cancelInTransaction(trx, actor.tenantId, sessionId, now()),
      );
      if (cancelled) {
        deps.onCancelled(sessionId);
        notifyObserver(deps.observer, 'sessionFinished', 'cancelled');
        deps.notifier.publish(sessionChannel(sessionId));
      }
      return details.withSettings(
        deps.db,
        await getSessionDetail(deps.db, actor.tenantId, sessionId, deps.reportDamagedJson),
      );
    },

    async deleteSession(actor, sessionId) {
      await deleteFinishedSession(deps.queue, actor.tenantId, sessionId);
      // Nothing of it stays in this process's memory; other replicas find its row gone.
      details.forget(sessionId);
      // Wakes its event streams and MCP subscriptions (on every replica): their next read finds it gone.
      deps.notifier.publish(sessionChannel(sessionId));
      // Its workspace on this replica: gone when the call returns (the sweeper removes the others).
      await deps.onDeleted?.(sessionId);
    },

    async listEvents(actor, sessionId, afterSeq, limit) {
      await getSessionRow(deps.db, actor.tenantId, sessionId);
      const boundedLimit = Math.min(Math.max(1, Math.trunc(limit) || 1), MAX_EVENT_PAGE);
      return listSessionEvents(
        deps.db,
        sessionId,
        Math.max(0, Math.trunc(afterSeq) || 0),
        boundedLimit,
        deps.reportDamagedJson,
      );
    },

    async listEventsBefore(actor, sessionId, beforeSeq, limit) {
      await getSessionRow(deps.db, actor.tenantId, sessionId);
      const boundedLimit = Math.min(Math.max(1, Math.trunc(limit) || 1), MAX_EVENT_PAGE);
      const before = beforeSeq === null ? null : Math.max(0, Math.trunc(beforeSeq) || 0);
      return listSessionEventsBefore(deps.db, sessionId, before, boundedLimit, deps.reportDamagedJson);
    },

    watchEvents: (sessionId, onWake) => deps.notifier.subscribe(sessionChannel(sessionId), onWake),
  };
}

/** The input parsed by `schema`, or VALIDATION_FAILED naming every issue. */
function parseInput<T extends z.ZodType>(schema: T, raw: unknown, what: string): z.output<T> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`);
  throw new AppError('VALIDATION_FAILED', `${what}: ${issues.join('; ')}`, { details: issues });
}

/** The key and the request's hash, or undefined without a key; VALIDATION_FAILED for a malformed key. */
function idempotencyOf(key: string | undefined, request: unknown): { key: string; hash: string } | undefined {
  if (key === undefined) return undefined;
  if (!IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw new AppError('VALIDATION_FAILED', `Idempotency-Key ${IDEMPOTENCY_KEY_RULE}`);
  }
  return { key, hash: hashRequest(request) };
}

/** A primary-key/unique violation from SQLite or PostgreSQL (23505). */
function isUniqueViolation(error: unknown): boolean {
  const code = String((error as { code?: unknown } | null)?.code ?? '');
  return code === '23505' || code.startsWith('SQLITE_CONSTRAINT');
}

/** Cancels every unfinished task and the session. False when it was already cancelled. */
async function cancelInTransaction(
  trx: Kysely<Database>,
  tenantId: string,
  sessionId: string,
  now: number,
): Promise<boolean> {
  await lockSessions(trx, [sessionId], tenantId);
  const row = await getSessionRow(trx, tenantId, sessionId);
  const from = row.status as SessionStatus;
  if (from === 'cancelled') return false;
  if (isTerminalSessionStatus(from)) {
    throw new AppError(
      'INVALID_STATE',
      `The session is already ${from}; only unfinished sessions can be cancelled`,
    );
  }
  const to = transitionSession(from, 'cancel');
  const events: NewEvent[] = [];
  // What running attempts had recorded spending is charged with the cancel (engine/run-spend.ts).
  const usage = toUsage(row);
  addUsage(usage, await cancelOpenTasks(trx, sessionId, 'session cancelled', now, events));
  await trx
    .updateTable('sessions')
    .set({ status: to, error: 'cancelled on request', finished_at: now, updated_at: now })
    .where('id', '=', sessionId)
    .execute();
  events.push(
    { type: 'session.status', data: { from, to } },
    {
      type: 'session.finished',
      data: { status: 'cancelled', error: 'cancelled on request', result: null, usage },
    },
  );
  await appendEvents(trx, { id: sessionId, tenantId }, events, now);
  return true;
}
