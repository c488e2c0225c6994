// Migration 0026_tenant_export_indexes: `maos tenants export` reads a tenant's rows of a table a page
// at a time, each page after the last row of the one before (store/tenant-export.ts). With an index
// led by the tenant and followed by the columns the pages are read in, a page is one range of it;
// without, each page read every row of the tenant again and sorted them, so the export of a tenant
// with many sessions grew with the square of their number. Sessions already have such an index
// (tenant, created_at, id); session settings, one row per session, get one; the tenant indexes of
// webhooks and API keys (small tables) gain the id, so that they give a unique order, as the webhook
// list (created_at, id) reads them too.
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createIndex('session_settings_tenant')
    .on('session_settings')
    .columns(['tenant_id', 'session_id'])
    .execute();
  await db.schema.dropIndex('webhooks_tenant').execute();
  await db.schema
    .createIndex('webhooks_tenant')
    .on('webhooks')
    .columns(['tenant_id', 'created_at', 'id'])
    .execute();
  await db.schema.dropIndex('api_keys_tenant_idx').execute();
  await db.schema.createIndex('api_keys_tenant_idx').on('api_keys').columns(['tenant_id', 'id']).execute();
}

/** Puts the indexes back as they were. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropIndex('api_keys_tenant_idx').execute();
  await db.schema.createIndex('api_keys_tenant_idx').on('api_keys').column('tenant_id').execute();
  await db.schema.dropIndex('webhooks_tenant').execute();
  await db.schema
    .createIndex('webhooks_tenant')
    .on('webhooks')
    .columns(['tenant_id', 'created_at'])
    .execute();
  await db.schema.dropIndex('session_settings_tenant').execute();
}
