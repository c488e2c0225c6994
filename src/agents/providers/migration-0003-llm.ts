// Migration 0003_llm: tenants' custom agent roles and the content-addressed LLM response cache.
import type { Kysely } from 'kysely';

/** Name under which the store's migration list registers this migration. */
export const LLM_MIGRATION_NAME = '0003_llm';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

/** Creates `custom_roles` and `llm_response_cache`. */
export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('custom_roles')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('capabilities', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('instructions', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('custom_roles_pk', ['tenant_id', 'name'])
    .execute();

  await db.schema
    .createTable('llm_response_cache')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('response', 'text', (c) => c.notNull())
    .addColumn('hits', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_hit_at', 'bigint')
    .addPrimaryKeyConstraint('llm_response_cache_pk', ['tenant_id', 'key'])
    .execute();
  // Pruning old entries scans by age.
  await db.schema
    .createIndex('llm_response_cache_created_idx')
    .on('llm_response_cache')
    .column('created_at')
    .execute();
}

/** Drops both tables. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('llm_response_cache').execute();
  await db.schema.dropTable('custom_roles').execute();
}
