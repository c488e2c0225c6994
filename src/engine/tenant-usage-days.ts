// The per-day spend ledger (table tenant_usage_days): what each tenant was charged on each UTC day,
// by the day of the charge. Written in the transaction that charges sessions (advance-sessions.ts),
// read by the daily token quota (security/quotas.ts).
import type { Insertable, Kysely } from 'kysely';
import { isZeroUsage, type Usage } from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';
import { precompileQuery } from '../store/compiled-query.ts';
import type { Database, TenantUsageDaysTable } from '../store/schema.ts';

export const DAY_MS = 86_400_000;

/**
 * The tenant daily token quota, for new work of a running session (security/quotas.ts): throws
 * QUOTA_EXCEEDED, its message ending with `consequence`, when the tenant's tokens charged today
 * have reached the cap. Reads through `trx` (the transaction that would start the work).
 */
export type CheckTenantDailyTokens = (
  trx: Kysely<Database>,
  tenantId: string,
  consequence: string,
) => Promise<void>;

/** The tokens (input + output) charged to `tenantId` on the UTC day starting at `day`: what the daily quota counts. */
export async function readTenantDayTokens(
  db: Kysely<Pick<Database, 'tenant_usage_days'>>,
  tenantId: string,
  day: number,
): Promise<number> {
  const row = await db
    .selectFrom('tenant_usage_days')
    .select(['input_tokens', 'output_tokens'])
    .where('tenant_id', '=', tenantId)
    .where('day', '=', day)
    .executeTakeFirst();
  return Number(row?.input_tokens ?? 0) + Number(row?.output_tokens ?? 0);
}

/**
 * QUOTA_EXCEEDED for a tenant whose tokens today (`used`) reached `limit`; `consequence` ends the
 * message. `retryAfterSeconds`: the wait until the day's count starts over, at 00:00 UTC on the
 * quota's clock (secondsUntilUtcMidnight), sent as its Retry-After.
 */
export function dailyTokensExceeded(
  used: number,
  limit: number,
  consequence: string,
  retryAfterSeconds: number,
): AppError {
  return new AppError(
    'QUOTA_EXCEEDED',
    `The tenant used ${used} tokens today (limit ${limit}); ${consequence}`,
    {
      details: { quota: 'daily_tokens', limit },
      retryAfterSeconds,
    },
  );
}

/** Unix ms of 00:00 UTC of the day `now` (Unix ms) falls in. */
export function utcDayStart(now: number): number {
  return now - (((now % DAY_MS) + DAY_MS) % DAY_MS);
}

/** Seconds from `now` (Unix ms) until the next 00:00 UTC (at least 1): the daily quota's wait. */
export function secondsUntilUtcMidnight(now: number): number {
  return Math.max(1, Math.ceil((utcDayStart(now) + DAY_MS - now) / 1000));
}

// The usual batch charges one tenant: that upsert is compiled once (it runs with every finish of
// an LLM task, on the chain's critical path); a batch of several tenants builds its statement.
const upsertOneTenantDay = precompileQuery<Database, never>(
  6,
  (db, [tenantId, day, inputTokens, outputTokens, cacheReadTokens, costUsd]) =>
    upsertTenantDays(db, [
      {
        tenant_id: tenantId as string,
        day: day as never,
        input_tokens: inputTokens as never,
        output_tokens: outputTokens as never,
        cache_read_tokens: cacheReadTokens as never,
        cost_usd: costUsd as never,
      },
    ]),
);

/**
 * Adds each tenant's charge to its row of the UTC day of `now`, in one statement (the callers sum
 * a batch per tenant first: the finish batch's charges are one upsert, not one per task).
 */
export async function chargeTenantDays(
  trx: Kysely<Database>,
  charges: ReadonlyMap<string, Usage>,
  now: number,
): Promise<void> {
  const day = utcDayStart(now);
  // In tenant order: two transactions upserting overlapping tenants lock their rows in one order.
  const rows = [...charges]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .filter(([, usage]) => !isZeroUsage(usage))
    .map(([tenantId, usage]) => ({
      tenant_id: tenantId,
      day,
      input_tokens: usage.inputTokens,
      output_tokens: usage.outputTokens,
      cache_read_tokens: usage.cacheReadTokens,
      cost_usd: usage.costUsd,
    }));
  const [only] = rows;
  if (rows.length === 1 && only) {
    await upsertOneTenantDay(
      trx,
      only.tenant_id,
      only.day,
      only.input_tokens,
      only.output_tokens,
      only.cache_read_tokens,
      only.cost_usd,
    );
  } else if (rows.length > 1) {
    await upsertTenantDays(trx, rows).execute();
  }
}

/** The upsert of `rows` into their tenants' days: each figure added to the row's. */
function upsertTenantDays(db: Kysely<Database>, rows: Insertable<TenantUsageDaysTable>[]) {
  return db
    .insertInto('tenant_usage_days')
    .values(rows)
    .onConflict((oc) =>
      oc.columns(['tenant_id', 'day']).doUpdateSet((eb) => ({
        input_tokens: eb('tenant_usage_days.input_tokens', '+', eb.ref('excluded.input_tokens')),
        output_tokens: eb('tenant_usage_days.output_tokens', '+', eb.ref('excluded.output_tokens')),
        cache_read_tokens: eb(
          'tenant_usage_days.cache_read_tokens',
          '+',
          eb.ref('excluded.cache_read_tokens'),
        ),
        cost_usd: eb('tenant_usage_days.cost_usd', '+', eb.ref('excluded.cost_usd')),
      })),
    );
}
