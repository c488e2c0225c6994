// Tenants come into being when a verified principal first acts for them (an OIDC tenant claim, an API
// key created for a tenant): the tenant row that every tenant-owned table references is created then.
// Nothing is remembered in the process: a tenant row deleted meanwhile by another process (by hand;
// `maos tenants purge` keeps it) is created afresh by its next request, on every replica, instead of
// failing its writes.
import type { Kysely } from 'kysely';
import { precompileQuery } from '../store/compiled-query.ts';
import type { TenantsTable } from '../store/schema.ts';

/** The tenants table, for queries of the security area that read or create tenant rows. */
export interface TenantTables {
  tenants: TenantsTable;
}

/** Creates tenant rows on first use. */
export interface TenantProvisioner {
  /** Makes sure the tenant row exists: a read by primary key, and the insert only when it is missing. */
  ensure(tenantId: string): Promise<void>;
  /** Creates the tenant row unless it exists. */
  create(tenantId: string): Promise<void>;
}

// Runs on every request in auth mode `none`: compiled once (store/compiled-query.ts).
const selectTenant = precompileQuery<TenantTables, { id: string }>(1, (db, [tenantId]) =>
  db
    .selectFrom('tenants')
    .select('id')
    .where('id', '=', tenantId as string),
);

/**
 * Creates tenant rows on first use. The insert ignores a conflict, so concurrent first requests (or
 * replicas in cluster mode) agree without a lock.
 */
export function createTenantProvisioner(
  // biome-ignore lint/suspicious/noExplicitAny: works on any schema that has the tenants table
  db: Kysely<any>,
  now: () => number = Date.now,
): TenantProvisioner {
  const tenants = db as unknown as Kysely<TenantTables>;
  async function create(tenantId: string): Promise<void> {
    await tenants
      .insertInto('tenants')
      .values({ id: tenantId, name: tenantId, created_at: now() })
      .onConflict((conflict) => conflict.column('id').doNothing())
      .execute();
  }
  return {
    async ensure(tenantId) {
      // A read, not the insert each time: on SQLite an insert takes the write lock even when it
      // conflicts, so every request would queue behind the writers.
      const { rows } = await selectTenant(tenants, tenantId);
      if (rows.length === 0) await create(tenantId);
    },
    create,
  };
}
