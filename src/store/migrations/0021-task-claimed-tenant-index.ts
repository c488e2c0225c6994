// Migration 0021_task_claimed_tenant_index: a tenant's claimed (leased or running) tasks. The daily
// token quota's guard reads them, with the spend each has recorded, every quarter second while the
// tenant has a run streaming (engine/tenant-token-guard.ts). The claimed-leases index holds the
// cluster's claimed tasks of every tenant, so that read walked all of them: about 1 ms with 2,000
// running against 50 µs with this one. Partial like it: only claimed tasks are in it, so finished
// tasks cost no upkeep, and a flush recording a run's spend changes no indexed column.
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createIndex('tasks_claimed_tenant')
    .on('tasks')
    .column('tenant_id')
    .where(sql.ref('status'), 'in', ['leased', 'running'])
    .execute();
}

/** Drops the index again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropIndex('tasks_claimed_tenant').execute();
}
