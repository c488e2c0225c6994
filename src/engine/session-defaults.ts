// A tenant's session defaults (plan approval, budget) from the `llm.approval` and `llm.budgets`
// configuration, in the shape the engine's submit path takes.
import type { LlmConfig } from '../config/llm-schema.ts';
import type { SessionDefaults } from './engine-types.ts';

/** Per-tenant entries win over the `default` entries. */
export function createSessionDefaults(llm: Pick<LlmConfig, 'approval' | 'budgets'>) {
  return (tenantId: string): SessionDefaults => {
    const budget = ownEntry(llm.budgets.tenants, tenantId) ?? llm.budgets.default;
    return {
      approval: ownEntry(llm.approval.tenants, tenantId) ?? llm.approval.default,
      ...(budget ? { budget } : {}),
    };
  };
}

/**
 * The configured entry of a tenant, if any. Tenant ids come from API keys and IdP claims: one named
 * `__proto__` or `constructor` must find no entry, not a member of Object.prototype (which failed
 * every submit of such a tenant with 500, or would have stood in for its budget as one without limits).
 */
function ownEntry<T>(entries: Record<string, T>, tenantId: string): T | undefined {
  return Object.hasOwn(entries, tenantId) ? entries[tenantId] : undefined;
}
