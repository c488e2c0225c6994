// Tenants come into being when a verified principal first acts for them (an OIDC tenant claim, an API
// key created for a tenant): the tenant row that every tenant-owned table references is created then.
import type { Kysely } from 'kysely';

interface TenantsTable {
  id: string;
  name: string;
  created_at: number;
}

/** Makes sure a tenant row exists; remembers the tenants it has seen so the common case costs nothing. */
export interface TenantProvisioner {
  ensure(tenantId: string): Promise<void>;
}

/**
 * Creates tenant rows on first use. The insert ignores a conflict, so concurrent first requests (or
 * replicas in cluster mode) agree without a lock.
 */
export function createTenantProvisioner(
  // biome-ignore lint/suspicious/noExplicitAny: works on any schema that has the tenants table
  db: Kysely<any>,
  now: () => number = Date.now,
): TenantProvisioner {
  const tenants = db as unknown as Kysely<{ tenants: TenantsTable }>;
  const known = new Set<string>();
  return {
    async ensure(tenantId) {
      if (known.has(tenantId)) return;
      await tenants
        .insertInto('tenants')
        .values({ id: tenantId, name: tenantId, created_at: now() })
        .onConflict((conflict) => conflict.column('id').doNothing())
        .execute();
      known.add(tenantId);
    },
  };
}
