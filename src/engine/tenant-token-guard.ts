// The tenant daily token quota at run time (`rateLimit.maxDailyTokensPerTenant`): an LLM agent (or
// an orchestrator call) of a tenant whose tokens charged today have reached the cap does not start,
// and one running is stopped at its next output flush once the tokens charged today plus what the
// tenant's runs in this process have streamed so far reach it. Both fail their task with
// QUOTA_EXCEEDED, which ends the session (advance-sessions.ts) as a budget stop does.
// Like the session budget guard (session-budget.ts), a flush never waits on the store: each tenant's
// row of the day is cached and refreshed in the background, with the tenant's tasks still running.
// A run here whose task the store shows ended (cancelled, or reaped) has been charged by whoever
// ended it, so its stream stops counting then instead of counting twice until the run notices.
// Runs of other replicas count once they have finished and charged the day, so a cluster can
// overshoot by what its replicas stream between two refreshes.
import { type Kysely, sql } from 'kysely';
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
  /** The tenant's tasks leased or running when the figure was read (after the day's row). */
  live: ReadonlySet<string>;
  /** Which read this is: reads are numbered as they start. */
  read: number;
  loadedAt: number;
}

/** What one of the tenant's runs here has streamed. */
interface Stream {
  tokens: number;
  /**
   * Reads started before the guard first heard of the run (its first flush, after its claim): a
   * later one finds its task leased or running unless someone else has ended it.
   */
  knownAfter: number;
}

/**
 * The tenant's tasks leased or running: the ones whose spend no one has charged yet. Status as
 * literals, so SQLite uses the partial index of claimed tasks (tasks_claimed_leases), whose rows
 * are the cluster's running tasks only.
 */
async function readLiveTasks(db: Kysely<Database>, tenantId: string): Promise<Set<string>> {
  const rows = await db
    .selectFrom('tasks')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('status', 'in', [sql.lit('leased'), sql.lit('running')])
    .execute();
  return new Set(rows.map((row) => row.id));
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
  // Per tenant, what each of its running tasks has streamed so far.
  const streaming = new Map<string, Map<string, Stream>>();
  let readsStarted = 0;
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
      const read = ++readsStarted;
      // The day's row first: a charge that lands between the two reads (a finish, a cancel) is
      // missed till the next read, as its task has left the live ones; read the other way round,
      // its tokens would count twice.
      pending = readTenantDayTokens(db, tenantId, day)
        .then(async (tokens) => {
          const live = await readLiveTasks(db, tenantId);
          days.set(tenantId, { day, tokens, live, read, loadedAt: now() });
        })
        // A failed read keeps the last figure: the quota is checked again at the next flush.
        .catch(() => {})
        .finally(() => loading.delete(tenantId));
      loading.set(tenantId, pending);
    }
    return pending;
  }

  /**
   * The tenant's tokens as last read, with what its runs here stream: today's charged tokens (0
   * once the UTC day has turned: the new day's row starts empty) and each run's stream, but for a
   * run whose task a read made after its start found ended (whoever ended it charged what it had
   * recorded). None read yet (the read at the run's start failed): read again, 0 till then.
   */
  function usedBy(tenantId: string): number {
    const entry = days.get(tenantId);
    if (!entry) void refresh(tenantId);
    const at = now();
    if (entry && (at - entry.loadedAt > refreshMs || utcDayStart(at) !== entry.day)) void refresh(tenantId);
    let used = entry && utcDayStart(at) === entry.day ? entry.tokens : 0;
    for (const [taskId, stream] of streaming.get(tenantId) ?? []) {
      const settled = entry !== undefined && entry.read > stream.knownAfter && !entry.live.has(taskId);
      if (!settled) used += stream.tokens;
    }
    return used;
  }

  /** The tenant's streams here, with this task's (known from now on). */
  function streamsOf(task: TenantTask): Map<string, Stream> {
    let running = streaming.get(task.tenantId);
    if (!running) {
      running = new Map();
      streaming.set(task.tenantId, running);
    }
    if (!running.has(task.taskId)) running.set(task.taskId, { tokens: 0, knownAfter: readsStarted });
    return running;
  }

  return {
    async prepare(task) {
      sweep();
      await refresh(task.tenantId);
      const used = usedBy(task.tenantId);
      if (used >= limit) throw dailyTokensExceeded(used, limit, 'the agent was not started');
    },
    check(task, partialUsage) {
      const stream = streamsOf(task).get(task.taskId) as Stream;
      stream.tokens = partialUsage.inputTokens + partialUsage.outputTokens;
      const used = usedBy(task.tenantId);
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
