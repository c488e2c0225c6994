// A tenant's session defaults (plan approval, budget) from the `llm.approval` and `llm.budgets`
// configuration, in the shape the engine's submit path takes.
import type { LlmConfig } from '../config/llm-schema.ts';
import type { SessionDefaults } from './engine-types.ts';

/** Per-tenant entries win over the `default` entries. */
export function createSessionDefaults(llm: Pick<LlmConfig, 'approval' | 'budgets'>) {
  return (tenantId: string): SessionDefaults => {
    const budget = llm.budgets.tenants[tenantId] ?? llm.budgets.default;
    return {
      approval: llm.approval.tenants[tenantId] ?? llm.approval.default,
      ...(budget ? { budget } : {}),
    };
  };
}
