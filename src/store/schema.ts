// Row types of every table, as Kysely sees them. Timestamps are integer epoch milliseconds and
// JSON is stored as text, so the same types serve SQLite and (later) PostgreSQL.

export interface TenantsTable {
  id: string;
  name: string;
  created_at: number;
}

export interface SessionsTable {
  id: string;
  tenant_id: string;
  objective: string;
  strategy: string;
  status: string;
  /** JSON object. */
  metadata: string;
  plan_version: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cost_usd: number;
  error: string | null;
  result: string | null;
  /** Last event seq handed out; the next event gets last_seq + 1 (same transaction). */
  last_seq: number;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  finished_at: number | null;
  /**
   * W3C `traceparent` of the session's workflow span (migration 0005); tasks continue this trace.
   * Optional in the type: rows written without tracing leave it null.
   */
  trace_parent?: string | null;
  /** W3C `tracestate` that came with `trace_parent`, if any. */
  trace_state?: string | null;
  /** The failed or cancelled session this one retries (migration 0020); null for a new submission. */
  retry_of?: string | null;
}

export interface PlansTable {
  session_id: string;
  version: number;
  tenant_id: string;
  /** JSON PlanBody. */
  body: string;
  created_at: number;
}

export interface AgentsTable {
  id: string;
  tenant_id: string;
  session_id: string;
  name: string;
  role: string;
  runtime: string;
  created_at: number;
}

export interface TasksTable {
  id: string;
  tenant_id: string;
  session_id: string;
  kind: string;
  name: string;
  role: string;
  agent_id: string | null;
  instructions: string;
  runner: string | null;
  phase: number;
  /** Order of the task inside its plan, for stable listings. */
  position: number;
  status: string;
  attempts: number;
  max_attempts: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  result: string | null;
  error: string | null;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cost_usd: number;
  /**
   * What the running attempt has spent and nobody was charged for yet (JSON: the usage figures
   * with `attempt` and `owner`, engine/run-spend.ts); settled once by whoever ends the attempt.
   */
  unsettled_usage?: string | null;
  /**
   * The runs whose spend was charged although their finish was rejected (migration 0032): a JSON
   * array of `{owner, attempt}` (engine/run-spend.ts), so a finish tried again charges them once.
   */
  unapplied_run_charges?: string | null;
  /**
   * What the task spent per provider and model that served it (migration 0012): a JSON array of
   * `{provider, model, inputTokens, outputTokens, cacheReadTokens, costUsd}`, appended to at each
   * applied finish of an LLM run (store/task-model-usage.ts); null when no model served it.
   */
  model_usage?: string | null;
  created_at: number;
  updated_at: number;
  ready_at: number | null;
  started_at: number | null;
  finished_at: number | null;
}

export interface TaskDependenciesTable {
  task_id: string;
  depends_on_task_id: string;
  session_id: string;
  tenant_id: string;
}

export interface MessagesTable {
  id: string;
  tenant_id: string;
  session_id: string;
  from_agent_id: string | null;
  to_agent_id: string | null;
  body: string;
  created_at: number;
  /** The task whose turn received this message (migration 0009); null until then. */
  delivered_task_id?: string | null;
}

export interface ArtifactsTable {
  id: string;
  tenant_id: string;
  session_id: string;
  task_id: string | null;
  name: string;
  media_type: string;
  content: string;
  sha256: string;
  created_at: number;
}

export interface EventsTable {
  session_id: string;
  seq: number;
  tenant_id: string;
  type: string;
  /** JSON object. */
  data: string;
  created_at: number;
}

export interface IdempotencyKeysTable {
  tenant_id: string;
  key: string;
  request_hash: string;
  session_id: string;
  created_at: number;
}

/** Orchestration settings of a session (migration 0004); absent row = no budget, no approval, no thread. */
export interface SessionSettingsTable {
  session_id: string;
  tenant_id: string;
  /** `required` | `none`. */
  approval: string;
  /** JSON Budget, or null: the effective one (the session's merged with its tenant's default). */
  budget: string | null;
  /**
   * JSON Budget the session asked for itself (migration 0023), '{}' when it gave none; a retry caps
   * it by the tenant's budget again. Sessions stored before 0023 have their effective budget; NULL is
   * a row written by a build older than the column (a rolling upgrade), read as its effective budget.
   */
  requested_budget: string | null;
  thread_id: string | null;
  created_at: number;
}

/** What a tenant was charged on one UTC day (migration 0013), by the day of the charge. */
export interface TenantUsageDaysTable {
  tenant_id: string;
  /** Unix ms of the day's 00:00 UTC. */
  day: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cost_usd: number;
}

/** A deleted session, remembered for a while so that every replica removes its workspace (migration 0017). */
export interface DeletedSessionsTable {
  id: string;
  tenant_id: string;
  deleted_at: number;
}

/** The whole schema. Other areas extend it with their own tables via interface merging or intersection. */
export interface Database {
  tenants: TenantsTable;
  sessions: SessionsTable;
  plans: PlansTable;
  agents: AgentsTable;
  tasks: TasksTable;
  task_dependencies: TaskDependenciesTable;
  messages: MessagesTable;
  artifacts: ArtifactsTable;
  events: EventsTable;
  idempotency_keys: IdempotencyKeysTable;
  session_settings: SessionSettingsTable;
  tenant_usage_days: TenantUsageDaysTable;
  deleted_sessions: DeletedSessionsTable;
}
