// The allowed values of every metric label: fixed lists, or a pattern plus a cap on distinct
// values for names that come from config (provider, model, route). Keeps cardinality bounded.

import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import { listBuiltInRoleNames } from '../agents/roles/catalogue.ts';
import { SESSION_STATUSES } from '../domain/types.ts';
import { ERROR_CODES, type ErrorCode } from '../errors/app-error.ts';
import { RETENTION_TABLES as RETENTION_TARGET_TABLES } from '../store/retention-targets.ts';
import { WEBHOOK_EVENTS } from '../webhooks/webhook-tables.ts';

/** Value that replaces anything outside a label's allowed set. */
export const OTHER = '_OTHER';

/** A label's allowed values: a closed list, or an open set bounded by a pattern and a count. */
export type LabelRule = readonly string[] | { readonly pattern: RegExp; readonly maxDistinct: number };

/** HTTP methods kept as themselves; any other method is counted as `_OTHER` (as OTel does). */
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', OTHER] as const;
/** Route label of requests that matched no route (fastify-metrics uses the same name). */
export const UNKNOWN_ROUTE = '__unknown__';

export const SESSION_OUTCOMES = ['completed', 'failed', 'cancelled'] as const;
/** Task states that make up the queue (pending waits on dependencies; the rest is the backlog). */
export const QUEUE_STATES = ['pending', 'ready', 'leased', 'running'] as const;
export const TASK_OUTCOMES = ['succeeded', 'failed', 'cancelled', 'retried'] as const;
export const SLOT_STATES = ['busy', 'idle'] as const;
export const GEN_AI_OPERATIONS = [
  'chat',
  'text_completion',
  'generate_content',
  'embeddings',
  'execute_tool',
  'invoke_agent',
  'invoke_workflow',
  'create_agent',
  'plan',
] as const;
export const TOKEN_TYPES = ['input', 'output'] as const;
/** Classes of provider failures; fine-grained enough to route an alert, coarse enough to stay bounded. */
export const PROVIDER_ERROR_TYPES = [
  'timeout',
  'rate_limited',
  'server_error',
  'authentication',
  'bad_request',
  'network',
  'content_filter',
  'cancelled',
  'circuit_open',
  OTHER,
] as const;
export const CIRCUIT_STATES = ['closed', 'half_open', 'open'] as const;
export const CACHE_RESULTS = ['hit', 'miss', 'error'] as const;
export const MCP_METHODS = [
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'resources/templates/list',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'notifications/initialized',
  'notifications/cancelled',
  OTHER,
] as const;
export const MCP_OUTCOMES = ['success', 'error'] as const;
/** The tools MAOS offers over MCP (src/mcp/tools.ts, steering-tools.ts); any other name is `_OTHER`. */
export const MCP_TOOLS = [
  'orchestrate',
  'session_status',
  'list_roles',
  'cancel_session',
  'retry_session',
  'approve_plan',
  'reject_plan',
  'send_message',
  OTHER,
] as const;
/** JSON-RPC error codes MCP answers with (-32002: resource not found); others are `_OTHER`. */
export const MCP_JSONRPC_ERROR_CODES = [
  '-32700',
  '-32600',
  '-32601',
  '-32602',
  '-32603',
  '-32000',
  '-32001',
  '-32002',
  OTHER,
] as const;
/**
 * `error.type` of a failed MCP request: its JSON-RPC error code, `tool_error` for a tool result with
 * `isError: true` (as the OTel MCP conventions name it), or why no response was sent.
 */
export const MCP_ERROR_TYPES = [
  ...MCP_JSONRPC_ERROR_CODES.filter((code) => code !== OTHER),
  'tool_error',
  'cancelled',
  'connection_closed',
  OTHER,
] as const;
/** MCP protocol versions the SDK negotiates; a session can only use one of them. */
export const MCP_PROTOCOL_VERSIONS = [...SUPPORTED_PROTOCOL_VERSIONS, OTHER] as const;
/** `network.transport` of an MCP request: `tcp` for Streamable HTTP, `pipe` for stdio. */
export const MCP_NETWORK_TRANSPORTS = ['tcp', 'pipe'] as const;
/**
 * What refused a request: `requests` (rate limits), `sessions` (concurrent sessions quota), `tokens`
 * (daily token quota), `streams` (SSE stream caps), `mcp_requests` (the caps on MCP requests in
 * flight, per MCP session and per caller), `mcp_sessions` (the caps on open MCP sessions and resumed
 * MCP streams: in all, per tenant, per caller).
 */
export const RATE_LIMITERS = [
  'requests',
  'sessions',
  'streams',
  'tokens',
  'mcp_requests',
  'mcp_sessions',
  OTHER,
] as const;
export const AUTH_FAILURE_REASONS = [
  'missing_credentials',
  'invalid_token',
  'expired_token',
  'wrong_audience',
  'insufficient_scope',
  'invalid_api_key',
  'permission_denied',
  OTHER,
] as const;
export const AUDIT_OUTCOMES = ['success', 'failure', 'unknown'] as const;
export const BUDGET_SCOPES = ['session', 'tenant', 'agent', 'task', OTHER] as const;
/**
 * The error codes the shipped alerts select maos_errors_total by (MaosAuthProviderUnavailable), each
 * exported at 0 from the start so that increase() sees a replica's first one. Only these: every code
 * at 0 would be some 60 flat series in the dashboards' errors-by-code panel.
 */
export const ALERTED_ERROR_CODES = ['AUTH_PROVIDER_UNAVAILABLE'] as const satisfies readonly ErrorCode[];
export const WEBHOOK_OUTCOMES = ['delivered', 'retried', 'failed'] as const;
/** Why a webhook subscription was disabled: its receiver answered 410 Gone, or too many failures. */
export const WEBHOOK_DISABLE_REASONS = ['gone', 'failures'] as const;
/**
 * What the store did with an agent's message: stored, repeated (an earlier attempt's, not stored
 * again) or claim_lost (the sending run no longer holds its task: nothing stored, the run stopped).
 */
export const AGENT_MESSAGE_OUTCOMES = ['stored', 'repeated', 'claim_lost'] as const;
/** What became of a statement that met a connection PostgreSQL had ended while it sat idle. */
export const STORE_ENDED_CONNECTION_OUTCOMES = ['resent', 'failed'] as const;
export const READINESS_CHECKS = ['database', 'migrations', 'worker', 'shutdown'] as const;
/** Tables the retention job deletes from (one list, kept by the job itself). */
export const RETENTION_TABLES = [...RETENTION_TARGET_TABLES, OTHER] as const;

/** Provider and model names come from config, so they are open but bounded. */
const PROVIDER_RULE = { pattern: /^[a-z0-9][a-z0-9._-]{0,63}$/, maxDistinct: 32 } as const;
const MODEL_RULE = { pattern: /^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$/, maxDistinct: 64 } as const;
/**
 * Task roles: the built-in catalogue and the orchestrator's own tasks. Tenants' custom roles are
 * `_OTHER`: their names are chosen through the API, not configuration, and tenants may define 50
 * each, which would soon take a bounded label's every slot and push the built-in roles out.
 */
export const ROLE_LABELS = [...listBuiltInRoleNames(), 'orchestrator', OTHER] as const;
/** Runtimes come from the code: open but bounded. */
const RUNTIME_RULE = { pattern: /^[a-z0-9][a-z0-9_-]{0,31}$/, maxDistinct: 16 } as const;
const GEN_AI_LABELS = {
  gen_ai_operation_name: GEN_AI_OPERATIONS,
  gen_ai_provider_name: PROVIDER_RULE,
  gen_ai_request_model: MODEL_RULE,
} as const;

/** Every metric MAOS defines, with its labels and their allowed values. The single source of truth. */
export const METRIC_LABELS = {
  maos_build_info: {
    // A semantic version: pre-release (`-rc.1`) and build metadata (`+build.5`), each optional.
    version: { pattern: /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/, maxDistinct: 1 },
    revision: { pattern: /^([0-9a-f]{7,40}|unknown)$/, maxDistinct: 1 },
  },
  http_request_duration_seconds: {
    method: HTTP_METHODS,
    // Templates come from the route table, so they are as many as the routes in the code.
    route: { pattern: /^(\/[^\s?#]*|__unknown__)$/, maxDistinct: 256 },
    status_code: { pattern: /^[1-5]\d\d$/, maxDistinct: 64 },
  },
  http_requests_in_flight: {},
  maos_errors_total: { code: Object.keys(ERROR_CODES) },
  maos_sessions: { status: SESSION_STATUSES },
  maos_sessions_started_total: {},
  maos_sessions_finished_total: { outcome: SESSION_OUTCOMES },
  maos_tasks: { status: QUEUE_STATES },
  maos_task_duration_seconds: { runtime: RUNTIME_RULE, role: ROLE_LABELS, outcome: TASK_OUTCOMES },
  maos_task_queue_wait_seconds: { runtime: RUNTIME_RULE, role: ROLE_LABELS },
  maos_task_lease_expiries_total: {},
  maos_task_retries_total: {},
  maos_worker_slots: { state: SLOT_STATES },
  maos_task_output_batch_fallbacks_total: {},
  maos_task_output_flush_failures_total: {},
  gen_ai_client_token_usage: { ...GEN_AI_LABELS, gen_ai_token_type: TOKEN_TYPES },
  gen_ai_client_operation_duration_seconds: { ...GEN_AI_LABELS, error_type: PROVIDER_ERROR_TYPES },
  maos_llm_cost_usd_total: { provider: PROVIDER_RULE, model: MODEL_RULE },
  maos_llm_provider_errors_total: { provider: PROVIDER_RULE, error_type: PROVIDER_ERROR_TYPES },
  maos_llm_circuit_state: { provider: PROVIDER_RULE, state: CIRCUIT_STATES },
  maos_llm_cache_requests_total: { provider: PROVIDER_RULE, result: CACHE_RESULTS },
  maos_agent_messages_total: { outcome: AGENT_MESSAGE_OUTCOMES },
  maos_sse_connections: {},
  maos_sse_events_sent_total: {},
  maos_sse_streams_dropped_total: {},
  maos_mcp_streams_dropped_total: {},
  maos_mcp_requests_total: { mcp_method_name: MCP_METHODS, outcome: MCP_OUTCOMES },
  mcp_server_operation_duration_seconds: {
    mcp_method_name: MCP_METHODS,
    gen_ai_tool_name: MCP_TOOLS,
    error_type: MCP_ERROR_TYPES,
    rpc_response_status_code: MCP_JSONRPC_ERROR_CODES,
    mcp_protocol_version: MCP_PROTOCOL_VERSIONS,
    network_transport: MCP_NETWORK_TRANSPORTS,
  },
  maos_rate_limit_rejections_total: { limiter: RATE_LIMITERS },
  maos_budget_rejections_total: { scope: BUDGET_SCOPES },
  maos_auth_failures_total: { reason: AUTH_FAILURE_REASONS },
  maos_audit_records_written_total: { outcome: AUDIT_OUTCOMES },
  maos_audit_write_failures_total: {},
  maos_retention_deleted_rows_total: { table: RETENTION_TABLES },
  maos_store_ended_connections_total: { outcome: STORE_ENDED_CONNECTION_OUTCOMES },
  maos_store_idle_connections_discarded_total: {},
  maos_store_pool_wait_timeouts_total: {},
  maos_store_listen_connected: {},
  maos_workspaces_removed_total: {},
  maos_orphaned_runners_killed_total: {},
  maos_replica_directories_removed_total: {},
  maos_webhook_deliveries_total: { event: WEBHOOK_EVENTS, outcome: WEBHOOK_OUTCOMES },
  maos_webhook_delivery_duration_seconds: {},
  maos_webhook_deliveries_pending: {},
  maos_webhook_subscriptions_disabled_total: { reason: WEBHOOK_DISABLE_REASONS },
  maos_tls_certificate_expiry_timestamp_seconds: {},
  maos_tls_reload_failures_total: {},
  maos_readiness_check_passing: { check: READINESS_CHECKS },
  maos_data_dir_free_bytes: {},
  maos_data_dir_capacity_bytes: {},
} as const satisfies Record<string, Record<string, LabelRule>>;

export type MetricName = keyof typeof METRIC_LABELS;
export type LabelsOf<M extends MetricName> = keyof (typeof METRIC_LABELS)[M] & string;

/**
 * Returns a function that maps a raw label value to an allowed one: kept when allowed, `_OTHER`
 * when outside a closed list, when it fails an open pattern, or when an open label already holds
 * `maxDistinct` other values (a misconfiguration must not explode the series count).
 * Returns undefined for a value of a closed list without `_OTHER`: the sample is dropped.
 */
export function createLabelGuard(): (metric: MetricName, label: string, value: string) => string | undefined {
  const seen = new Map<string, Set<string>>();
  return (metric, label, value) => {
    const rule = (METRIC_LABELS[metric] as Record<string, LabelRule | undefined>)[label];
    if (rule === undefined) return undefined;
    if (isClosedRule(rule)) {
      if (rule.includes(value)) return value;
      return rule.includes(OTHER) ? OTHER : undefined;
    }
    if (!rule.pattern.test(value)) return OTHER;
    const key = `${metric}/${label}`;
    const values = seen.get(key) ?? new Set<string>();
    seen.set(key, values);
    if (values.has(value)) return value;
    if (values.size >= rule.maxDistinct) return OTHER;
    values.add(value);
    return value;
  };
}

/** One label value found in a scrape that the allow-list does not permit. */
export interface LabelViolation {
  metric: string;
  label: string;
  value: string;
  reason: string;
}

interface ScrapedMetric {
  name: string;
  values: Array<{ labels: Record<string, string | number | undefined>; metricName?: string }>;
}

/**
 * Checks every label value of MAOS-defined metrics in `registry.getMetricsAsJSON()` output against
 * METRIC_LABELS. Metrics not in the table (Node process defaults) are ignored; `le` is the
 * histogram bucket label and always allowed.
 */
export function findLabelViolations(scraped: readonly ScrapedMetric[]): LabelViolation[] {
  const violations: LabelViolation[] = [];
  for (const metric of scraped) {
    const rules = (METRIC_LABELS as Record<string, Record<string, LabelRule>>)[metric.name];
    if (rules === undefined) continue;
    const distinct = new Map<string, Set<string>>();
    for (const sample of metric.values) {
      for (const [label, raw] of Object.entries(sample.labels)) {
        if (raw === undefined || label === 'le') continue;
        const value = String(raw);
        const rule = rules[label];
        const add = (reason: string) => violations.push({ metric: metric.name, label, value, reason });
        if (rule === undefined) add('label not declared');
        else if (isClosedRule(rule)) {
          if (!rule.includes(value)) add('value not in the allowed list');
        } else if (value === OTHER) {
          // the guard's overflow value for open labels
        } else if (!rule.pattern.test(value)) add(`value does not match ${rule.pattern}`);
        else {
          const values = distinct.get(label) ?? new Set<string>();
          values.add(value);
          distinct.set(label, values);
          if (values.size === rule.maxDistinct + 1) add(`more than ${rule.maxDistinct} distinct values`);
        }
      }
    }
  }
  return violations;
}

function isClosedRule(rule: LabelRule): rule is readonly string[] {
  return Array.isArray(rule);
}
