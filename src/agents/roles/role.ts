// The shape of an agent role: built-in (agents/roles/catalogue.ts) or custom per tenant.

export interface RoleDefinition {
  /** Lowercase identifier used in plans and API calls (e.g. `backend_engineer`). */
  name: string;
  /** One sentence shown in `GET /v1/roles` and to the orchestrator when it plans. */
  description: string;
  /** What this role is good at; the orchestrator matches tasks against these. */
  capabilities: string[];
  /** The system prompt template: goal, responsibilities, deliverable format. */
  instructions: string;
  builtIn: boolean;
}
