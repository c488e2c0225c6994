// The Prometheus metrics of MAOS: one private prom-client Registry (never the global one, so tests
// and several servers in one process do not collide) and typed recorders that bound every label.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { WEBHOOK_EVENTS } from '../webhooks/webhook-tables.ts';
import {
  AGENT_MESSAGE_OUTCOMES,
  ALERTED_ERROR_CODES,
  BUDGET_SCOPES,
  createLabelGuard,
  type LabelsOf,
  type MetricName,
  STORE_ENDED_CONNECTION_OUTCOMES,
  WEBHOOK_DISABLE_REASONS,
  WEBHOOK_OUTCOMES,
} from './metric-labels.ts';
import { defineLlmMetrics, type LlmMetrics } from './metrics-llm.ts';
import { defineScrapeGauges, type ScrapeSources } from './metrics-scrape.ts';

export type { CircuitState, LlmCallRecord } from './metrics-llm.ts';
export type { QueueState, ReadinessCheckName, ScrapeSources } from './metrics-scrape.ts';

/** HTTP server buckets from the OTel HTTP semantic conventions; 1 s is a bucket, the latency SLO needs it. */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
/** Tasks range from a linter run (sub-second) to a long agent conversation (up to an hour). */
const TASK_DURATION_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
/** From "ready" to "claimed": milliseconds when workers are free, minutes when the backlog grows. */
const QUEUE_WAIT_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];

/** mcp.server.operation.duration buckets prescribed by the OTel MCP semantic conventions. */
const MCP_DURATION_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];

/** prom-client default metrics that fail the Prometheus naming lint. */
const LINT_FAILING_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

export interface MetricsOptions {
  version: string;
  /** VCS revision of the build; `unknown` when not known. */
  revision?: string;
  /** Export Node.js process metrics too. @defaultValue true */
  collectDefaults?: boolean;
  /** Called when a scrape-time source throws; the scrape continues without that source. */
  onSourceError?: (source: string, error: unknown) => void;
}

/** Which kind of work a task was: its role and the runtime that ran it. */
export interface TaskLabels {
  role: string;
  runtime: string;
}
export type TaskOutcome = 'succeeded' | 'failed' | 'cancelled' | 'retried';

/** One MCP request the server handled, with the attributes of mcp.server.operation.duration. */
export interface McpOperationRecord {
  method: string;
  /** tools/call: the tool's name (a name outside MCP_TOOLS counts as `_OTHER`). */
  toolName?: string;
  /** Set on failure: a JSON-RPC error code, `tool_error`, `cancelled` or `connection_closed`. */
  errorType?: string;
  /** The JSON-RPC error code of the response, when it has one. */
  rpcStatusCode?: string;
  protocolVersion?: string;
  networkTransport: 'tcp' | 'pipe';
  durationSeconds: number;
}

/** The metrics facade: every recorder bounds its labels through the allow-list. */
export interface Metrics extends LlmMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** The exposition text of every metric. */
  render(): Promise<string>;
  /** Adds or replaces scrape-time sources. */
  setSources(sources: ScrapeSources): void;
  observeHttpRequest(method: string, route: string, statusCode: number, seconds: number): void;
  trackInFlight(delta: 1 | -1): void;
  recordError(code: string): void;
  recordSessionStarted(): void;
  recordSessionFinished(outcome: 'completed' | 'failed' | 'cancelled'): void;
  recordTaskFinished(task: TaskLabels, outcome: TaskOutcome, seconds: number): void;
  recordTaskQueueWait(task: TaskLabels, seconds: number): void;
  recordLeaseExpired(count?: number): void;
  recordTaskRetry(): void;
  setWorkerSlots(busy: number, total: number): void;
  /** A write of several runs' output flushes failed whole and was written again flush by flush. */
  recordOutputBatchFallback(): void;
  /** A run's output flush could not be stored (its lines are lost). */
  recordOutputFlushFailure(): void;
  /** What the store did with a message an agent sent (send_message). */
  recordAgentMessage(outcome: 'stored' | 'repeated' | 'claim_lost'): void;
  trackSseConnection(delta: 1 | -1): void;
  recordSseEventsSent(count?: number): void;
  recordSseStreamDropped(): void;
  recordMcpStreamDropped(): void;
  recordMcpRequest(method: string, outcome: 'success' | 'error'): void;
  /** mcp.server.operation.duration: one sample per MCP request answered (or abandoned). */
  recordMcpOperation(operation: McpOperationRecord): void;
  recordRateLimitRejection(limiter: string): void;
  recordBudgetRejection(scope: string): void;
  recordAuthFailure(reason: string): void;
  recordAuditRecordWritten(outcome: 'success' | 'failure' | 'unknown'): void;
  /** An audit record could not be appended (the request was answered already). */
  recordAuditWriteFailure(): void;
  /** Rows the retention job deleted from `table`. */
  recordRetentionDeleted(table: string, count: number): void;
  /**
   * PostgreSQL: a checkout's first statement met a connection the server had ended while it sat
   * idle; `resent` on a new connection, or `failed` (a write, not sent twice).
   */
  recordStoreEndedConnection(outcome: 'resent' | 'failed'): void;
  /** PostgreSQL: an idle pooled connection discarded because another was found ended beside it. */
  recordStoreIdleConnectionDiscarded(): void;
  /** PostgreSQL: a statement found every pooled connection in use for store.connectTimeoutMs (503). */
  recordStorePoolWaitTimeout(): void;
  /** Workspace directories of deleted sessions removed from this replica's data directory. */
  recordWorkspacesRemoved(count: number): void;
  /**
   * Runs whose processes a server or replica that is gone left running, killed by this process (at
   * start on SQLite, by the replica directory sweep on PostgreSQL).
   */
  recordOrphanedRunnersKilled(count: number): void;
  /** Directories of gone replicas removed from `<dataDir>/replicas` (PostgreSQL mode). */
  recordReplicaDirectoriesRemoved(count: number): void;
  /**
   * One webhook delivery attempt: its event, what became of it, how long its HTTP request took
   * (null when it sent nothing: counted, not timed).
   */
  recordWebhookAttempt(
    event: string,
    outcome: 'delivered' | 'retried' | 'failed',
    seconds: number | null,
  ): void;
  /** A webhook subscription was disabled automatically (410 Gone, or failed deliveries in a row). */
  recordWebhookDisabled(reason: 'gone' | 'failures'): void;
  /** The certificate now served over HTTPS expires at `notAfter` (tls.certFile). */
  setTlsCertificateExpiry(notAfter: Date): void;
  /** A changed tls.certFile/tls.keyFile pair could not be loaded; the previous one is still served. */
  recordTlsReloadFailure(): void;
}

// Why 1000: routes × methods × status codes of this API stay far below it; junk methods beyond it
// are still counted, only without the memo.
const MAX_CACHED_HTTP_LABEL_SETS = 1000;

/** Creates a fresh registry with every MAOS metric defined (values start at zero). */
export function createMetrics(options: MetricsOptions): Metrics {
  const registry = new Registry();
  const guard = createLabelGuard();
  const sources: ScrapeSources = {};
  const reportError = options.onSourceError ?? (() => {});
  const registers = [registry];

  function labels<M extends MetricName>(
    metric: M,
    raw: Partial<Record<LabelsOf<M>, string>>,
  ): Record<string, string> | undefined {
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(raw) as Array<[string, string | undefined]>) {
      if (value === undefined) continue;
      const bounded = guard(metric, name, value);
      if (bounded === undefined) return undefined;
      out[name] = bounded;
    }
    return out;
  }
  function names<M extends MetricName>(_metric: M, ...labelNames: Array<LabelsOf<M>>): string[] {
    return labelNames;
  }

  if (options.collectDefaults ?? true) {
    collectDefaultMetrics({ register: registry });
    // These three are gauges named like counters, which `promtool check metrics` rejects; their
    // values are the sums of nodejs_active_{handles,requests,resources}{type}, which stay.
    for (const name of LINT_FAILING_DEFAULTS) registry.removeSingleMetric(name);
  }

  const buildInfo = new Gauge({
    name: 'maos_build_info',
    help: 'Build of the running MAOS process; always 1.',
    labelNames: names('maos_build_info', 'version', 'revision'),
    registers,
  });
  const build = labels('maos_build_info', {
    version: options.version,
    revision: options.revision ?? 'unknown',
  });
  if (build) buildInfo.set(build, 1);

  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Duration of HTTP requests, by method, route template and status code.',
    labelNames: names('http_request_duration_seconds', 'method', 'route', 'status_code'),
    buckets: HTTP_BUCKETS,
    registers,
  });
  const httpInFlight = new Gauge({
    name: 'http_requests_in_flight',
    help: 'HTTP requests being served right now.',
    registers,
  });
  const errors = new Counter({
    name: 'maos_errors_total',
    help: 'Errors returned to callers, by stable error code.',
    labelNames: names('maos_errors_total', 'code'),
    registers,
  });
  // A labelled counter is created by its first increment, and increase() cannot see the increment
  // that created a series: the codes alerts select exist at 0 from the start, so a replica's first
  // AUTH_PROVIDER_UNAVAILABLE counts towards MaosAuthProviderUnavailable.
  for (const code of ALERTED_ERROR_CODES) errors.inc({ code }, 0);

  const sessionsStarted = new Counter({
    name: 'maos_sessions_started_total',
    help: 'Sessions that started running.',
    registers,
  });
  const sessionsFinished = new Counter({
    name: 'maos_sessions_finished_total',
    help: 'Sessions that reached a final state, by outcome.',
    labelNames: names('maos_sessions_finished_total', 'outcome'),
    registers,
  });
  const taskDuration = new Histogram({
    name: 'maos_task_duration_seconds',
    help: 'Run time of task attempts, from claim to finish, by runtime, role and outcome.',
    labelNames: names('maos_task_duration_seconds', 'runtime', 'role', 'outcome'),
    buckets: TASK_DURATION_BUCKETS,
    registers,
  });
  const queueWait = new Histogram({
    name: 'maos_task_queue_wait_seconds',
    help: 'Time tasks spent ready before a worker claimed them, by runtime and role.',
    labelNames: names('maos_task_queue_wait_seconds', 'runtime', 'role'),
    buckets: QUEUE_WAIT_BUCKETS,
    registers,
  });
  const leaseExpiries = new Counter({
    name: 'maos_task_lease_expiries_total',
    help: 'Task leases that expired without completion (a worker died or stalled).',
    registers,
  });
  const retries = new Counter({
    name: 'maos_task_retries_total',
    help: 'Task attempts scheduled again after an expired lease.',
    registers,
  });
  const workerSlots = new Gauge({
    name: 'maos_worker_slots',
    help: 'Task slots of this process, by state (busy / (busy + idle) = utilisation).',
    labelNames: names('maos_worker_slots', 'state'),
    registers,
  });

  const outputBatchFallbacks = new Counter({
    name: 'maos_task_output_batch_fallbacks_total',
    help: 'Writes of several task runs’ output flushes that failed as a whole and were written again one flush at a time.',
    registers,
  });
  const outputFlushFailures = new Counter({
    name: 'maos_task_output_flush_failures_total',
    help: 'Output flushes of task runs that could not be stored (their lines are lost; each is logged).',
    registers,
  });

  const llm = defineLlmMetrics({ registers, labels, names, inc, observe });

  const agentMessages = new Counter({
    name: 'maos_agent_messages_total',
    help: 'Messages agents sent each other (send_message), by what the store did: stored, repeated (an earlier attempt’s, not stored again) or claim_lost (the sender no longer held its task: nothing stored, its run stopped).',
    labelNames: names('maos_agent_messages_total', 'outcome'),
    registers,
  });
  for (const outcome of AGENT_MESSAGE_OUTCOMES) agentMessages.inc({ outcome }, 0);

  const sseConnections = new Gauge({
    name: 'maos_sse_connections',
    help: 'Open server-sent event streams.',
    registers,
  });
  const sseEvents = new Counter({
    name: 'maos_sse_events_sent_total',
    help: 'Events written to server-sent event streams.',
    registers,
  });
  const sseDropped = new Counter({
    name: 'maos_sse_streams_dropped_total',
    help: 'Server-sent event streams whose connection was dropped because the client took nothing of what waited for it.',
    registers,
  });
  const mcpStreamsDropped = new Counter({
    name: 'maos_mcp_streams_dropped_total',
    help: 'MCP event streams whose connection was dropped because the client took nothing of what waited for it, fell behind a stream that cannot be read from the log, or lacked messages the log pruned before it got them.',
    registers,
  });
  const mcpRequests = new Counter({
    name: 'maos_mcp_requests_total',
    help: 'MCP requests handled, by JSON-RPC method and outcome.',
    labelNames: names('maos_mcp_requests_total', 'mcp_method_name', 'outcome'),
    registers,
  });
  const mcpDuration = new Histogram({
    name: 'mcp_server_operation_duration_seconds',
    help: 'Duration of MCP requests from receipt to response (mcp.server.operation.duration); error_type set on failure.',
    labelNames: names(
      'mcp_server_operation_duration_seconds',
      'mcp_method_name',
      'gen_ai_tool_name',
      'error_type',
      'rpc_response_status_code',
      'mcp_protocol_version',
      'network_transport',
    ),
    buckets: MCP_DURATION_BUCKETS,
    registers,
  });
  const rateLimited = new Counter({
    name: 'maos_rate_limit_rejections_total',
    help: 'Requests rejected by a rate or concurrency limit, by limiter.',
    labelNames: names('maos_rate_limit_rejections_total', 'limiter'),
    registers,
  });
  const budgetRejections = new Counter({
    name: 'maos_budget_rejections_total',
    help: 'Work stopped or refused because a token or cost budget was exhausted, by scope.',
    labelNames: names('maos_budget_rejections_total', 'scope'),
    registers,
  });
  // Every scope at 0 from the start, as the error codes above: MaosBudgetRejectionsSpike sums
  // increase() over scopes, which missed a replica's first rejection of each scope.
  for (const scope of BUDGET_SCOPES) budgetRejections.inc({ scope }, 0);
  const authFailures = new Counter({
    name: 'maos_auth_failures_total',
    help: 'Rejected authentication or authorization attempts, by reason.',
    labelNames: names('maos_auth_failures_total', 'reason'),
    registers,
  });
  const auditRecords = new Counter({
    name: 'maos_audit_records_written_total',
    help: 'Audit records appended to the audit log, by recorded outcome.',
    labelNames: names('maos_audit_records_written_total', 'outcome'),
    registers,
  });
  const auditWriteFailures = new Counter({
    name: 'maos_audit_write_failures_total',
    help: 'Audit records that could not be appended to the audit log (each is logged at error level).',
    registers,
  });
  const retentionDeleted = new Counter({
    name: 'maos_retention_deleted_rows_total',
    help: 'Rows deleted by the retention job, by table.',
    labelNames: names('maos_retention_deleted_rows_total', 'table'),
    registers,
  });
  const storeEndedConnections = new Counter({
    name: 'maos_store_ended_connections_total',
    help: 'PostgreSQL connections the server had ended while they sat idle in the pool, met by a statement: resent on a new connection, or failed (a write, not sent twice).',
    labelNames: names('maos_store_ended_connections_total', 'outcome'),
    registers,
  });
  // Both outcomes from the start: a failover's first ended connection is seen by increase().
  for (const outcome of STORE_ENDED_CONNECTION_OUTCOMES) storeEndedConnections.inc({ outcome }, 0);
  const storeIdleDiscarded = new Counter({
    name: 'maos_store_idle_connections_discarded_total',
    help: 'Idle PostgreSQL pool connections discarded (replaced by new ones) because another connection was found ended by the server while they sat beside it.',
    registers,
  });
  const storePoolWaitTimeouts = new Counter({
    name: 'maos_store_pool_wait_timeouts_total',
    help: 'PostgreSQL statements refused (503 STORE_UNAVAILABLE) because every pooled connection stayed in use for store.connectTimeoutMs.',
    registers,
  });
  const workspacesRemoved = new Counter({
    name: 'maos_workspaces_removed_total',
    help: 'Workspace directories of deleted sessions removed from this replica’s data directory.',
    registers,
  });
  const orphanedRunnersKilled = new Counter({
    name: 'maos_orphaned_runners_killed_total',
    help: 'Runs whose processes a server or replica that is gone left running, killed by this process.',
    registers,
  });
  const replicaDirectoriesRemoved = new Counter({
    name: 'maos_replica_directories_removed_total',
    help: 'Directories of gone replicas (their runner HOMEs and run records) removed from the data directory.',
    registers,
  });
  const webhookAttempts = new Counter({
    name: 'maos_webhook_deliveries_total',
    help: 'Webhook delivery attempts by event and outcome (delivered, retried later, failed for good).',
    labelNames: names('maos_webhook_deliveries_total', 'event', 'outcome'),
    registers,
  });
  const webhookDuration = new Histogram({
    name: 'maos_webhook_delivery_duration_seconds',
    help: 'Time from sending a webhook delivery to its receiver’s answer (or the timeout).',
    // Receivers should answer fast; webhooks.timeoutSeconds caps the attempt at 60 s.
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const webhooksDisabled = new Counter({
    name: 'maos_webhook_subscriptions_disabled_total',
    help: 'Webhook subscriptions disabled automatically, by reason (gone: 410 answer; failures: too many failed deliveries in a row).',
    labelNames: names('maos_webhook_subscriptions_disabled_total', 'reason'),
    registers,
  });
  // Every series the webhook alerts read exists at 0 from the start: a labelled counter is created
  // by its first increment, and increase() cannot see the increment that created a series, so the
  // first give-up (or disable) of a replica, of each event, would pass unseen by
  // MaosWebhookDeliveriesGivenUp and MaosWebhookSubscriptionDisabled. 4 events x 3 outcomes + 2.
  for (const event of WEBHOOK_EVENTS) {
    for (const outcome of WEBHOOK_OUTCOMES) webhookAttempts.inc({ event, outcome }, 0);
  }
  for (const reason of WEBHOOK_DISABLE_REASONS) webhooksDisabled.inc({ reason }, 0);
  const tlsCertificateExpiry = new Gauge({
    name: 'maos_tls_certificate_expiry_timestamp_seconds',
    help: 'Unix time when the certificate served over HTTPS expires (no sample without tls.certFile).',
    registers,
  });
  // An unlabelled gauge starts at 0, which would read as a certificate expired in 1970.
  tlsCertificateExpiry.remove();
  const tlsReloadFailures = new Counter({
    name: 'maos_tls_reload_failures_total',
    help: 'Changed TLS certificate/key files that could not be loaded (the previous pair stays served).',
    registers,
  });
  defineScrapeGauges(registers, sources, reportError);

  // Raw method strings are caller-chosen, so the memo of checked label sets is capped.
  const httpLabelSets = new Map<string, Record<string, string> | null>();
  function inc(counter: Counter<string>, set: Record<string, string> | undefined, by = 1): void {
    if (set !== undefined && by > 0) counter.inc(set, by);
  }
  function observe(
    histogram: Histogram<string>,
    set: Record<string, string> | undefined,
    value: number,
  ): void {
    if (set !== undefined && Number.isFinite(value) && value >= 0) histogram.observe(set, value);
  }

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    setSources(next) {
      Object.assign(sources, next);
    },
    observeHttpRequest(method, route, statusCode, seconds) {
      // The label set of a (method, route, status) is checked once, not on every request.
      const key = `${method} ${route} ${statusCode}`;
      let set = httpLabelSets.get(key);
      if (set === undefined) {
        set = labels('http_request_duration_seconds', {
          method: method.toUpperCase(),
          route,
          status_code: String(statusCode),
        });
        if (httpLabelSets.size < MAX_CACHED_HTTP_LABEL_SETS) httpLabelSets.set(key, set ?? null);
      }
      if (set !== null) observe(httpDuration, set, seconds);
    },
    trackInFlight: (delta) => httpInFlight.inc(delta),
    recordError: (code) => inc(errors, labels('maos_errors_total', { code })),
    recordSessionStarted: () => sessionsStarted.inc(),
    recordSessionFinished: (outcome) =>
      inc(sessionsFinished, labels('maos_sessions_finished_total', { outcome })),
    recordTaskFinished: (task, outcome, seconds) =>
      observe(
        taskDuration,
        labels('maos_task_duration_seconds', { runtime: task.runtime, role: task.role, outcome }),
        seconds,
      ),
    recordTaskQueueWait: (task, seconds) =>
      observe(
        queueWait,
        labels('maos_task_queue_wait_seconds', { runtime: task.runtime, role: task.role }),
        seconds,
      ),
    recordLeaseExpired: (count = 1) => leaseExpiries.inc(count),
    recordTaskRetry: () => retries.inc(),
    setWorkerSlots(busy, total) {
      workerSlots.set({ state: 'busy' }, busy);
      workerSlots.set({ state: 'idle' }, Math.max(0, total - busy));
    },
    recordOutputBatchFallback: () => outputBatchFallbacks.inc(),
    recordOutputFlushFailure: () => outputFlushFailures.inc(),
    ...llm,
    recordAgentMessage: (outcome) => inc(agentMessages, labels('maos_agent_messages_total', { outcome })),
    trackSseConnection: (delta) => sseConnections.inc(delta),
    recordSseEventsSent: (count = 1) => sseEvents.inc(count),
    recordSseStreamDropped: () => sseDropped.inc(),
    recordMcpStreamDropped: () => mcpStreamsDropped.inc(),
    recordMcpRequest: (method, outcome) =>
      inc(mcpRequests, labels('maos_mcp_requests_total', { mcp_method_name: method, outcome })),
    recordMcpOperation: (operation) =>
      observe(
        mcpDuration,
        labels('mcp_server_operation_duration_seconds', {
          mcp_method_name: operation.method,
          gen_ai_tool_name: operation.toolName,
          error_type: operation.errorType,
          rpc_response_status_code: operation.rpcStatusCode,
          mcp_protocol_version: operation.protocolVersion,
          network_transport: operation.networkTransport,
        }),
        operation.durationSeconds,
      ),
    recordRateLimitRejection: (limiter) =>
      inc(rateLimited, labels('maos_rate_limit_rejections_total', { limiter })),
    recordBudgetRejection: (scope) =>
      inc(budgetRejections, labels('maos_budget_rejections_total', { scope })),
    recordAuthFailure: (reason) => inc(authFailures, labels('maos_auth_failures_total', { reason })),
    recordAuditRecordWritten: (outcome) =>
      inc(auditRecords, labels('maos_audit_records_written_total', { outcome })),
    recordAuditWriteFailure: () => auditWriteFailures.inc(),
    recordRetentionDeleted: (table, count) =>
      inc(retentionDeleted, labels('maos_retention_deleted_rows_total', { table }), count),
    recordStoreEndedConnection: (outcome) =>
      inc(storeEndedConnections, labels('maos_store_ended_connections_total', { outcome })),
    recordStoreIdleConnectionDiscarded: () => storeIdleDiscarded.inc(),
    recordStorePoolWaitTimeout: () => storePoolWaitTimeouts.inc(),
    recordWorkspacesRemoved: (count) => inc(workspacesRemoved, {}, count),
    recordOrphanedRunnersKilled: (count) => inc(orphanedRunnersKilled, {}, count),
    recordReplicaDirectoriesRemoved: (count) => inc(replicaDirectoriesRemoved, {}, count),
    recordWebhookAttempt(event, outcome, seconds) {
      inc(webhookAttempts, labels('maos_webhook_deliveries_total', { event, outcome }));
      if (seconds !== null) observe(webhookDuration, {}, seconds);
    },
    recordWebhookDisabled: (reason) =>
      inc(webhooksDisabled, labels('maos_webhook_subscriptions_disabled_total', { reason })),
    setTlsCertificateExpiry: (notAfter) => tlsCertificateExpiry.set(notAfter.getTime() / 1000),
    recordTlsReloadFailure: () => tlsReloadFailures.inc(),
  };
}
