// The tenant daily token quota at run time (`rateLimit.maxDailyTokensPerTenant`): an LLM agent (or
// an orchestrator call) of a tenant whose tokens charged today have reached the cap does not start,
// and one running is stopped at its next output flush once the tokens charged today plus what the
// tenant's runs are spending reach it. Both fail their task with QUOTA_EXCEEDED, which ends the
// session (advance-sessions.ts) as a budget stop does.
// Like the session budget guard (session-budget.ts), a flush never waits on the store: each tenant's
// row of the day is cached and refreshed in the background, with the tenant's tasks still running
// and the spend each has recorded on its task (run-spend.ts: written with the run's output flushes,
// at most once a second). A run here counts what it has streamed; a run of another replica counts
// its record, so it is seen about a second behind. A run here whose task the store shows ended
// (cancelled, or reaped) has been charged by whoever ended it, so its stream stops counting then
// instead of counting twice until the run notices.
import { type Kysely, sql } from 'kysely';
import type { Usage } from '../domain/types.ts';
import type { AppError } from '../errors/app-error.ts';
import type { Database } from '../store/schema.ts';
import { parseUnsettledUsage } from './run-spend.ts';
import {
  dailyTokensExceeded,
  readTenantDayTokens,
  secondsUntilUtcMidnight,
  utcDayStart,
} from './tenant-usage-days.ts';

/** A running task, as the guard tells the streams of a tenant apart. */
export interface TenantTask {
  tenantId: string;
  taskId: string;
}

export interface TenantTokenGuard {
  /** Loads the tenant's tokens of today; throws QUOTA_EXCEEDED when they have reached the cap. */
  prepare(task: TenantTask): Promise<void>;
  /** QUOTA_EXCEEDED once today's tokens and the tenant's running spend reach the cap, else null. */
  check(task: TenantTask, partialUsage: Usage): AppError | null;
  /** The task's run has ended: its streamed tokens stop counting (its finish charges them). */
  release(task: TenantTask): void;
}

interface TenantDay {
  /** Unix ms of the UTC day's 00:00 the figure is of. */
  day: number;
  tokens: number;
  /**
   * The tenant's tasks leased or running when the figure was read (after the day's row), with the
   * tokens each has on record (0: none yet); `recorded` is their sum.
   */
  live: ReadonlyMap<string, number>;
  recorded: number;
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
 * The tenant's tasks leased or running, the ones whose spend no one has charged yet, with the
 * tokens their current attempt has recorded (a record of an earlier attempt is not counted: a
 * cancel would not charge it either). Status as literals, so SQLite uses the partial index of the
 * tenants' claimed tasks (tasks_claimed_tenant).
 */
export async function readLiveTasks(db: Kysely<Database>, tenantId: string): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('tasks')
    .select(['id', 'attempts', 'lease_owner', 'unsettled_usage'])
    .where('tenant_id', '=', tenantId)
    .where('status', 'in', [sql.lit('leased'), sql.lit('running')])
    .execute();
  const live = new Map<string, number>();
  for (const row of rows) {
    const record = parseUnsettledUsage(row.unsettled_usage);
    const current = record && record.attempt === Number(row.attempts) && record.owner === row.lease_owner;
    live.set(row.id, current ? record.usage.inputTokens + record.usage.outputTokens : 0);
  }
  return live;
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
          let recorded = 0;
          for (const onRecord of live.values()) recorded += onRecord;
          days.set(tenantId, { day, tokens, live, recorded, read, loadedAt: now() });
        })
        // A failed read keeps the last figure: the quota is checked again at the next flush.
        .catch(() => {})
        .finally(() => loading.delete(tenantId));
      loading.set(tenantId, pending);
    }
    return pending;
  }

  /**
   * The tenant's tokens as last read, with what its runs spend: today's charged tokens (0 once the
   * UTC day has turned: the new day's row starts empty), the records of its running tasks (runs
   * that end after midnight are charged to the new day), and what each run here has streamed beyond
   * its record, but nothing of a run whose task a read made after its first flush found ended
   * (whoever ended it charged its record). None read yet (the read at the run's start failed): read
   * again, 0 till then.
   */
  function usedBy(tenantId: string): number {
    const entry = days.get(tenantId);
    const at = now();
    if (!entry || at - entry.loadedAt > refreshMs || utcDayStart(at) !== entry.day) void refresh(tenantId);
    let used = entry ? (utcDayStart(at) === entry.day ? entry.tokens : 0) + entry.recorded : 0;
    for (const [taskId, stream] of streaming.get(tenantId) ?? []) {
      const onRecord = entry?.live.get(taskId);
      if (onRecord !== undefined) used += Math.max(0, stream.tokens - onRecord);
      else if (entry === undefined || entry.read <= stream.knownAfter) used += stream.tokens;
    }
    return used;
  }

  /** This task's stream among the tenant's streams here (known from its first flush on). */
  function streamOf(task: TenantTask): Stream {
    let running = streaming.get(task.tenantId);
    if (!running) {
      running = new Map();
      streaming.set(task.tenantId, running);
    }
    let stream = running.get(task.taskId);
    if (!stream) {
      stream = { tokens: 0, knownAfter: readsStarted };
      running.set(task.taskId, stream);
    }
    return stream;
  }

  /** The refusal at `used` tokens, with the wait till 00:00 UTC on the guard's clock. */
  function overLimit(used: number, consequence: string): AppError {
    return dailyTokensExceeded(used, limit, consequence, secondsUntilUtcMidnight(now()));
  }

  return {
    async prepare(task) {
      sweep();
      await refresh(task.tenantId);
      const used = usedBy(task.tenantId);
      if (used >= limit) throw overLimit(used, 'the agent was not started');
    },
    check(task, partialUsage) {
      const stream = streamOf(task);
      stream.tokens = partialUsage.inputTokens + partialUsage.outputTokens;
      const used = usedBy(task.tenantId);
      return used >= limit ? overLimit(used, 'the agent was stopped') : null;
    },
    release(task) {
      const running = streaming.get(task.tenantId);
      if (!running) return;
      running.delete(task.taskId);
      if (running.size === 0) streaming.delete(task.tenantId);
    },
  };
}
