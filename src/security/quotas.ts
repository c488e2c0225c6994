// Tenant quotas checked when a session is submitted: unfinished sessions at once and LLM tokens
// charged per UTC day (the ledger tenant_usage_days, by the day of the charge, not of the session's
// creation). Over a cap the submit gets 429 QUOTA_EXCEEDED. Over the daily cap, a running session
// starts no further adaptive phase and takes no steering message (engine `checkTenantDailyTokens`),
// and its LLM agents are not started or are stopped mid-stream (engine/tenant-token-guard.ts).
// The check runs twice: early, before planning (a cheap refusal that spares an LLM call), and again
// inside the transaction that inserts the session, with the tenant's submissions serialised
// (engine `admitSession`), which is what makes the cap exact under concurrent submits.
import type { Kysely } from 'kysely';
import { TERMINAL_SESSION_STATUSES } from '../domain/session-state.ts';
import {
  DAY_MS,
  dailyTokensExceeded,
  readTenantDayTokens,
  secondsUntilUtcMidnight,
  utcDayStart,
} from '../engine/tenant-usage-days.ts';
import { AppError } from '../errors/app-error.ts';

/** The columns of the engine's tables the quota check reads. */
interface QuotaTables {
  sessions: {
    tenant_id: string;
    status: string;
  };
  idempotency_keys: {
    tenant_id: string;
    key: string;
  };
  tasks: {
    tenant_id: string;
    session_id: string;
    status: string;
  };
}

export interface TenantQuotaConfig {
  /** 0 = no cap. */
  maxConcurrentSessionsPerTenant: number;
  /** 0 = no cap. */
  maxDailyTokensPerTenant: number;
}

// biome-ignore lint/suspicious/noExplicitAny: reads one table of the store's schema
type AnyDb = Kysely<any>;

export interface TenantQuotas {
  /**
   * Throws QUOTA_EXCEEDED when the tenant may not start another session now. Counts through `trx`
   * when given (the session insert's transaction, so the count and the insert are one step),
   * through the store otherwise (the early check). `idempotencyKey` (the early check's request's):
   * over a cap, a key the tenant has already stored passes, as its request is a replay that starts
   * no session (the engine answers it with the stored session, or refuses a different body; the
   * insert's transaction looks for the key before it counts). `retryOf` (the early check of a
   * retry): over a cap, the retry of a session whose tasks all succeeded passes, as it may be
   * complete the moment it is stored (nothing to run), neither unfinished nor spending; the engine
   * knows once it has stored it, and refuses it otherwise (engine/retry-session.ts).
   */
  assertSessionAllowed(
    tenantId: string,
    trx?: AnyDb,
    idempotencyKey?: string,
    retryOf?: string,
  ): Promise<void>;
  /**
   * Throws QUOTA_EXCEEDED (quota `daily_tokens`) when the tenant's tokens charged today have reached
   * the daily cap: for new work of a running session (a phase gate, a steering message).
   * `consequence` ends the message (what the refusal means for the caller).
   */
  assertDailyTokensLeft(tenantId: string, trx: AnyDb | undefined, consequence: string): Promise<void>;
}

/** Creates the quota check over the store's sessions table. */
export function createTenantQuotas(
  db: AnyDb,
  config: TenantQuotaConfig,
  now: () => Date = () => new Date(),
): TenantQuotas {
  async function checkDailyTokens(store: AnyDb, tenantId: string, consequence: string): Promise<void> {
    if (config.maxDailyTokensPerTenant <= 0) return;
    // Today's row alone (the ledger's own day key): what the tenant's sessions were charged since
    // 00:00 UTC, whenever they were created (a session running across midnight charges its later
    // spend to the new day).
    // One reading of the clock for the day read and its wait: read again after the count, past
    // midnight, a refusal for the day that just ended asked for a retry a whole day later.
    const at = now().getTime();
    const used = await readTenantDayTokens(store, tenantId, utcDayStart(at));
    if (used >= config.maxDailyTokensPerTenant) {
      // Asked again when the day's count starts over, at 00:00 UTC.
      const wait = secondsUntilUtcMidnight(at);
      throw dailyTokensExceeded(used, config.maxDailyTokensPerTenant, consequence, wait);
    }
  }

  async function checkSessionAllowed(store: AnyDb, tenantId: string): Promise<void> {
    if (config.maxConcurrentSessionsPerTenant > 0) {
      const active = await countUnfinishedSessions(store, tenantId);
      if (active >= config.maxConcurrentSessionsPerTenant) {
        throw new AppError(
          'QUOTA_EXCEEDED',
          `The tenant already has ${active} unfinished sessions (limit ${config.maxConcurrentSessionsPerTenant})`,
          {
            details: { quota: 'concurrent_sessions', limit: config.maxConcurrentSessionsPerTenant },
            // Sessions finish on their own schedule; a minute is a polite poll.
            retryAfterSeconds: 60,
          },
        );
      }
    }
    await checkDailyTokens(store, tenantId, 'new sessions start after 00:00 UTC');
  }

  return {
    async assertSessionAllowed(tenantId, trx, idempotencyKey, retryOf) {
      try {
        await checkSessionAllowed(trx ?? db, tenantId);
      } catch (error) {
        // Read only once refused: a submit under its caps pays nothing for it.
        if (!(error instanceof AppError) || error.code !== 'QUOTA_EXCEEDED') throw error;
        const store = trx ?? db;
        if (idempotencyKey !== undefined && (await isStoredKey(store, tenantId, idempotencyKey))) return;
        if (retryOf !== undefined && (await allTasksSucceeded(store, tenantId, retryOf))) return;
        throw error;
      }
    },
    async assertDailyTokensLeft(tenantId, trx, consequence) {
      await checkDailyTokens(trx ?? db, tenantId, consequence);
    },
  };
}

/** The tenant's unfinished sessions (what `maxConcurrentSessionsPerTenant` counts). */
async function countUnfinishedSessions(db: AnyDb, tenantId: string): Promise<number> {
  const row = await (db as Kysely<QuotaTables>)
    .selectFrom('sessions')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('tenant_id', '=', tenantId)
    .where('status', 'not in', TERMINAL_SESSION_STATUSES)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** Whether the tenant has stored `key` as an Idempotency-Key (a request with it is a replay). */
async function isStoredKey(db: AnyDb, tenantId: string, key: string): Promise<boolean> {
  const row = await (db as Kysely<QuotaTables>)
    .selectFrom('idempotency_keys')
    .select('key')
    .where('tenant_id', '=', tenantId)
    .where('key', '=', key)
    .executeTakeFirst();
  return row !== undefined;
}

/** Whether every task of the tenant's session `sessionId` succeeded (its retry has none to run). */
async function allTasksSucceeded(db: AnyDb, tenantId: string, sessionId: string): Promise<boolean> {
  const row = await (db as Kysely<QuotaTables>)
    .selectFrom('tasks')
    .select('status')
    .where('tenant_id', '=', tenantId)
    .where('session_id', '=', sessionId)
    .where('status', '!=', 'succeeded')
    .executeTakeFirst();
  return row === undefined;
}

/** A tenant's quotas and what it has used of them (GET /v1/quotas). A limit of null: no cap. */
export interface TenantQuotaStatus {
  concurrentSessions: { limit: number | null; used: number };
  dailyTokens: { limit: number | null; used: number; resetsAt: string };
}

/** Reads what `tenantId` has used of each quota now: its unfinished sessions and today's tokens. */
export async function readTenantQuotaStatus(
  db: AnyDb,
  tenantId: string,
  config: TenantQuotaConfig,
  now: Date = new Date(),
): Promise<TenantQuotaStatus> {
  const day = utcDayStart(now.getTime());
  const [sessions, tokens] = await Promise.all([
    countUnfinishedSessions(db, tenantId),
    readTenantDayTokens(db, tenantId, day),
  ]);
  const capOrNull = (limit: number) => (limit > 0 ? limit : null);
  return {
    concurrentSessions: { limit: capOrNull(config.maxConcurrentSessionsPerTenant), used: sessions },
    dailyTokens: {
      limit: capOrNull(config.maxDailyTokensPerTenant),
      used: tokens,
      resetsAt: new Date(day + DAY_MS).toISOString(),
    },
  };
}
