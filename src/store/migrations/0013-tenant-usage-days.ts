// Migration 0013_tenant_usage_days: what each tenant was charged per UTC day, the day a charge was
// made (not the day its session was created), for the daily token quota and the usage report. One
// row per tenant and day, added to in the transaction that charges a session (engine/tenant-usage-days.ts).
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

const DAY_MS = 86_400_000;

/**
 * Creates `tenant_usage_days` (day = Unix ms of the day's 00:00 UTC) and fills it from the existing
 * sessions, each counted toward the day it was created (how quotas and reports counted until now),
 * so that neither resets on upgrade.
 */
export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('tenant_usage_days')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('day', 'bigint', (c) => c.notNull())
    .addColumn('input_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('output_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('cache_read_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('cost_usd', 'double precision', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('tenant_usage_days_pk', ['tenant_id', 'day'])
    .execute();
  // created_at is a non-negative bigint on both stores: `%` then gives the ms since 00:00 UTC.
  await sql`
    insert into tenant_usage_days (tenant_id, day, input_tokens, output_tokens, cache_read_tokens, cost_usd)
    select tenant_id, created_at - created_at % ${sql.lit(DAY_MS)} as day, sum(input_tokens),
      sum(output_tokens), sum(cache_read_tokens), sum(cost_usd)
    from sessions
    group by tenant_id, created_at - created_at % ${sql.lit(DAY_MS)}
    having sum(input_tokens) > 0 or sum(output_tokens) > 0 or sum(cache_read_tokens) > 0 or sum(cost_usd) > 0
  `.execute(db);
}

/** Drops the table. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('tenant_usage_days').execute();
}
