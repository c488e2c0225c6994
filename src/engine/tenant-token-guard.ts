// The tenant daily token quota at run time (`rateLimit.maxDailyTokensPerTenant`): an LLM agent (or
// an orchestrator call) of a tenant whose tokens charged today have reached the cap does not start,
// and one running is stopped at its next output flush once the tokens charged today plus what the
// tenant's runs in this process have streamed so far reach it. Both fail their task with
// QUOTA_EXCEEDED, which ends the session (advance-sessions.ts) as a budget stop does.
// Like the session budget guard (session-budget.ts), a flush never waits on the store: each tenant's
// row of the day is cached and refreshed in the background. Runs of other replicas count once they
// have finished and charged the day, so a cluster can overshoot by what its replicas stream
// between two refreshes.
import type { Kysely } from 'kysely';
import type { Usage } from '../domain/types.ts';
import type { AppError } from '../errors/app-error.ts';
import type { Database } from '../store/schema.ts';
import { dailyTokensExceeded, readTenantDayTokens, utcDayStart } from './tenant-usage-days.ts';

/** A running task, as the guard tells the streams of a tenant apart. */
export interface TenantTask {
  tenantId: string;
  taskId: string;
}

export interface TenantTokenGuard {
  /** Loads the tenant's tokens of today; throws QUOTA_EXCEEDED when they have reached the cap. */
  prepare(task: TenantTask): Promise<void>;
  /** QUOTA_EXCEEDED once today's tokens and the tenant's streams here reach the cap, else null. */
  check(task: TenantTask, partialUsage: Usage): AppError | null;
  /** The task's run has ended: its streamed tokens stop counting (its finish charges them). */
  release(task: TenantTask): void;
}

interface TenantDay {
  /** Unix ms of the UTC day's 00:00 the figure is of. */
  day: number;
  tokens: number;
  loadedAt: number;
}

/** The guard for a cap of `limit` tokens per tenant and UTC day (> 0). */
export function createTenantTokenGuard(
  db: Kysely<Database>,
  limit: number,
  options: { refreshMs?: number; now?: () => number } = {},
): TenantTokenGuard {
  const refreshMs = options.refreshMs ?? 250;
  const now = options.now ?? Date.now;
  const days = new Map<string, TenantDay>();
  const loading = new Map<string, Promise<void>>();
  // Per tenant, the tokens each of its running tasks has streamed so far.
  const streaming = new Map<string, Map<string, number>>();
  let sweptAt = now();

  /**
   * Forgets the figures of tenants with nothing streaming that were not read for ten minutes (at
   * most once a minute), as the session budget guard does: the map stays bounded by the tenants
   * active lately, and an entry is never dropped under a run that still needs it.
   */
  function sweep(): void {
    const at = now();
    if (at - sweptAt < 60_000) return;
    sweptAt = at;
    for (const [tenantId, entry] of days) {
      if (entry.loadedAt < at - 10 * 60_000 && !streaming.has(tenantId)) days.delete(tenantId);
    }
  }

  function refresh(tenantId: string): Promise<void> {
    let pending = loading.get(tenantId);
    if (!pending) {
      const day = utcDayStart(now());
      pending = readTenantDayTokens(db, tenantId, day)
        .then((tokens) => {
          days.set(tenantId, { day, tokens, loadedAt: now() });
        })
        // A failed read keeps the last figure: the quota is checked again at the next flush.
        .catch(() => {})
        .finally(() => loading.delete(tenantId));
      loading.set(tenantId, pending);
    }
    return pending;
  }

  /**
   * Today's tokens as last read (0 once the UTC day has turned: the new day's row starts empty).
   * None read yet (the read at the run's start failed): read again, 0 till then.
   */
  function storedToday(tenantId: string): number {
    const entry = days.get(tenantId);
    if (!entry) {
      void refresh(tenantId);
      return 0;
    }
    const at = now();
    if (at - entry.loadedAt > refreshMs || utcDayStart(at) !== entry.day) void refresh(tenantId);
    return utcDayStart(at) === entry.day ? entry.tokens : 0;
  }

  function streamedBy(tenantId: string): number {
    let sum = 0;
    for (const tokens of streaming.get(tenantId)?.values() ?? []) sum += tokens;
    return sum;
  }

  return {
    async prepare(task) {
      sweep();
      await refresh(task.tenantId);
      const used = storedToday(task.tenantId) + streamedBy(task.tenantId);
      if (used >= limit) throw dailyTokensExceeded(used, limit, 'the agent was not started');
    },
    check(task, partialUsage) {
      let running = streaming.get(task.tenantId);
      if (!running) {
        running = new Map();
        streaming.set(task.tenantId, running);
      }
      running.set(task.taskId, partialUsage.inputTokens + partialUsage.outputTokens);
      const used = storedToday(task.tenantId) + streamedBy(task.tenantId);
      return used >= limit ? dailyTokensExceeded(used, limit, 'the agent was stopped') : null;
    },
    release(task) {
      const running = streaming.get(task.tenantId);
      if (!running) return;
      running.delete(task.taskId);
      if (running.size === 0) streaming.delete(task.tenantId);
    },
  };
}
