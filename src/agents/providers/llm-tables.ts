// Row types of the LLM tables (migration 0003_llm), for typed Kysely access next to the core schema.
import type { Kysely } from 'kysely';

export interface CustomRolesTable {
  tenant_id: string;
  name: string;
  description: string;
  /** JSON array of strings. */
  capabilities: string;
  instructions: string;
  created_by: string;
  created_at: number;
  updated_at: number;
}

export interface LlmResponseCacheTable {
  tenant_id: string;
  key: string;
  provider: string;
  model: string;
  response: string;
  hits: number;
  created_at: number;
  last_hit_at: number | null;
}

export interface LlmTables {
  custom_roles: CustomRolesTable;
  llm_response_cache: LlmResponseCacheTable;
}

/** A Kysely handle that sees the LLM tables; any `Kysely<Database>` can be viewed as one. */
export type LlmDb = Kysely<LlmTables>;
