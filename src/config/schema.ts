// The one configuration schema of MAOS. Every option has a default and a one-line description;
// docs/configuration.md is generated from this file (scripts/gen-config-docs.ts) and checked in CI.
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseCidr } from '../security/cidr.ts';
import { egressConfigSchema } from './egress-schema.ts';
import { llmConfigSchema, providersConfigSchema, refineLlmReferences } from './llm-schema.ts';
import { retentionConfigSchema } from './retention-schema.ts';
import { refineRunnerAccess, runnerAccessConfigSchema } from './runner-access-schema.ts';
import {
  auditConfigSchema,
  authConfigSchema,
  browserOriginSchema,
  corsConfigSchema,
  rateLimitConfigSchema,
  secretsConfigSchema,
  ssrfConfigSchema,
  tlsConfigSchema,
} from './security-schema.ts';
import { storeUrlProblem } from './store-url.ts';
import { timerMs, timerSeconds } from './timer-limits.ts';
import { webhooksConfigSchema } from './webhooks-schema.ts';

/**
 * Defaults that code reading a partial config (tests, tools) falls back to as well: one source for
 * the schema and for them.
 */
export const CONFIG_DEFAULTS = {
  storePoolSize: 10,
  storeConnectTimeoutMs: 5000,
  // Long enough that a busy server answers most checks with "still working"; short enough that a
  // failover or a firewall dropping a connection costs a request tens of seconds, not 15 minutes.
  storeStalledQueryCheckMs: 30_000,
  // A database started beside the app (Kubernetes, docker-compose) usually accepts connections within
  // tens of seconds; a minute rides that out, and a database still missing after it is worth an exit.
  storeStartupWaitMs: 60_000,
  maxSseStreamsPerTenant: 100,
  // As many as one MCP connection may subscribe to (each a stream in stdio remote mode), half the tenant cap.
  maxSseStreamsPerPrincipal: 50,
  requestTimeoutSeconds: 60,
} as const;

const runnerSchema = z
  .strictObject({
    command: z
      .array(z.string().min(1))
      .min(1)
      .describe('Program and arguments, run without a shell (e.g. ["npm", "test"]).'),
    timeoutSeconds: timerSeconds()
      .int()
      .positive()
      .default(600)
      .describe('Wall-clock limit; the whole process group is killed when it is reached.'),
    cwd: z
      .string()
      // Empty is not unset, as for every key: `cwd: $RUNNER_DIR` with the variable unset ran the
      // runner in the session workspace instead of the directory meant, without a word.
      .min(1, 'must not be empty (leave it unset for the session workspace)')
      .optional()
      .describe('Working directory; defaults to the session workspace under the data directory.'),
    env: z
      .record(z.string(), z.string())
      .default({})
      .describe(
        'Extra environment variables for the process. A name must not be empty or hold `=` or a NUL character, a value no NUL character: the system takes neither.',
      ),
  })
  .describe(
    'A command an agent of the `command` runtime may run. Declared by the operator, never by API callers.',
  );

export type RunnerConfig = z.infer<typeof runnerSchema>;

/**
 * Why the system would not take variable `name` = `value` into a process's environment (each is a
 * `name=value` C string: a NUL ends it early, the first `=` ends the name), or undefined. Checked
 * here so that `maos config check` and the start refuse it, not the spawn of the runner's tasks.
 */
function runnerEnvProblem(name: string, value: string): { inName: boolean; why: string } | undefined {
  if (name === '') return { inName: true, why: 'an empty name' };
  if (name.includes('\0')) return { inName: true, why: 'a NUL character in its name' };
  if (name.includes('=')) {
    return { inName: true, why: 'an "=" in its name (the system ends a name at its first "=")' };
  }
  if (value.includes('\0')) return { inName: false, why: 'a NUL character in its value (value not shown)' };
  return undefined;
}

/**
 * CONFIG_INVALID for each runner `env` variable the system cannot set, naming the runner and the
 * variable, never its value (it may be a secret). A name that is itself refused is shown quoted
 * (escaped) in the message, not in the key path, where a NUL or a control character would be raw.
 */
function refineRunnerEnv(runners: Record<string, RunnerConfig>, ctx: z.RefinementCtx): void {
  for (const [runner, config] of Object.entries(runners)) {
    for (const [name, value] of Object.entries(config.env)) {
      const problem = runnerEnvProblem(name, value);
      if (problem === undefined) continue;
      ctx.addIssue({
        code: 'custom',
        path: problem.inName ? [runner, 'env'] : [runner, 'env', name],
        message: `variable ${JSON.stringify(name)} of runner ${runner} cannot be set: ${problem.why}; no process environment can hold it`,
      });
    }
  }
}

const configShape = z.strictObject({
  dataDir: z
    .string()
    .min(1)
    .default('./.maos')
    .describe('Directory for the SQLite database, workspaces and keys. @defaultValue ./.maos'),
  host: z
    .string()
    .min(1)
    .default('127.0.0.1')
    .describe('Address the HTTP server binds to. @defaultValue 127.0.0.1'),
  port: z
    .number()
    .int()
    .min(0)
    .max(65535)
    .default(7070)
    .describe('HTTP port; 0 picks a free one. @defaultValue 7070'),
  logLevel: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('Minimum log level. @defaultValue info'),
  store: z
    .strictObject({
      url: z
        .string()
        // An empty value (a secret key left blank) is no "unset": read as such, every replica of
        // a PostgreSQL deployment would run on a SQLite file of its own.
        .min(1, 'must not be empty (leave it unset for the SQLite file maos.db in dataDir)')
        // What the store would refuse at start, refused by `maos config check` too.
        .superRefine((url, ctx) => {
          const problem = url === '' ? undefined : storeUrlProblem(url);
          if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
        })
        .optional()
        .describe(
          'Database URL. Unset = SQLite file `maos.db` in dataDir (empty is an error, not unset); `sqlite:<path>` (relative to the working directory) or `sqlite:///<absolute path>` for another file (`sqlite://x.db` is refused: `//` would start a host); `postgres://user:pass@host:5432/db` for PostgreSQL (cluster mode: several replicas share one database).',
        ),
      synchronous: z
        .enum(['full', 'normal'])
        .default('full')
        .describe(
          "SQLite durability: `full` survives a power cut for every acknowledged write (each commit's WAL is flushed with fdatasync off the event loop before the write is acknowledged; the connection itself reports synchronous=NORMAL); `normal` may lose the last commits on power loss (never corrupts). @defaultValue full",
        ),
      syncEngineCommits: z
        .boolean()
        .optional()
        .describe(
          "SQLite with `synchronous: full`. Unset or `false` (the default) lets the engine's own progress (claims, output, task finishes) be acknowledged at commit, without waiting for the disk; the WAL is flushed right after in the background and nothing read leaves the process (API answers, SSE events, MCP) before that flush, so a power cut can only take back progress nobody has seen (those tasks run again). `true` makes every such commit wait for its fsync before the next step starts: slower, but a dependant never starts on an output a power cut could take back, and no task starts before its session's submit is on disk. @defaultValue false",
        ),
      walCheckpoint: z
        .enum(['background', 'inline'])
        .optional()
        .describe(
          "SQLite: who copies the write-ahead log into the database file. Unset or `background` (the default): a worker thread with its own connection, once the log has grown past 1 MiB, whenever 1000 frames wait, so the copy and its fsync never stall requests or agent steps on the event loop; if that worker fails, checkpoints return to the write connection and a warning is logged. `inline`: SQLite's own automatic checkpoint inside the commit that crosses 1000 frames. @defaultValue background",
        ),
      busyTimeoutMs: timerMs()
        .int()
        .positive()
        .default(5000)
        .describe('How long a SQLite writer waits for the lock before failing. @defaultValue 5000'),
      poolSize: z
        .number()
        .int()
        .min(2)
        .max(1000)
        .default(CONFIG_DEFAULTS.storePoolSize)
        .describe(
          "PostgreSQL only: connections in each replica's pool (at least 2: one may hold a lock while another works). @defaultValue 10",
        ),
      connectTimeoutMs: timerMs()
        .int()
        .positive()
        .default(CONFIG_DEFAULTS.storeConnectTimeoutMs)
        .describe(
          'PostgreSQL only: how long a query waits for a pooled connection before failing with STORE_UNAVAILABLE. @defaultValue 5000',
        ),
      stalledQueryCheckMs: timerMs()
        .int()
        .positive()
        .default(CONFIG_DEFAULTS.storeStalledQueryCheckMs)
        .describe(
          'PostgreSQL only: how long a query waits for its answer before the replica asks the server, over a new connection, whether it still works on it (then again at this interval). A query whose server session is gone or idle, or whose server cannot be reached within connectTimeoutMs (network lost without a reset: firewall, failover), fails with STORE_UNAVAILABLE and its connection is closed; long statements and lock waits run on. @defaultValue 30000',
        ),
      startupWaitMs: timerMs()
        .int()
        .min(0)
        .default(CONFIG_DEFAULTS.storeStartupWaitMs)
        .describe(
          'PostgreSQL only: how long `maos serve` and `maos migrate` keep trying to reach the database at start (connection refused, host name not found yet, `the database system is starting up`, too many clients), with back-off from 0.25 s doubling to 5 s, before they exit with STORE_UNAVAILABLE; a wrong password or a missing database fails at once. The server listens only once the database answers; SIGTERM or SIGINT ends its wait at once (exit 0). 0 = fail at the first error. @defaultValue 60000',
        ),
    })
    .default({
      synchronous: 'full',
      busyTimeoutMs: 5000,
      poolSize: CONFIG_DEFAULTS.storePoolSize,
      connectTimeoutMs: CONFIG_DEFAULTS.storeConnectTimeoutMs,
      stalledQueryCheckMs: CONFIG_DEFAULTS.storeStalledQueryCheckMs,
      startupWaitMs: CONFIG_DEFAULTS.storeStartupWaitMs,
    })
    .describe('Database settings.'),
  workers: z
    .strictObject({
      concurrency: z
        .number()
        .int()
        .min(0)
        .max(1024)
        .default(8)
        .describe('Task slots in this process; 0 = API only, no task execution. @defaultValue 8'),
      pollIntervalMs: timerMs()
        .int()
        .positive()
        .default(1000)
        .describe('Fallback poll for ready tasks when no wake-up arrives. @defaultValue 1000'),
    })
    .default({ concurrency: 8, pollIntervalMs: 1000 })
    .describe('Worker settings.'),
  tasks: z
    .strictObject({
      leaseSeconds: timerSeconds()
        .int()
        .min(2)
        .default(30)
        .describe(
          'Lease length; a worker heartbeats every third of it, and a task whose lease expires is re-run. @defaultValue 30',
        ),
      maxAttempts: z
        .number()
        .int()
        .min(1)
        .max(100)
        .default(3)
        .describe(
          'Runs of a task whose lease expires (its worker died or stalled), first run included, before it fails for good; a run that fails (a runner exiting non-zero, a model error) is not run again. @defaultValue 3',
        ),
    })
    .default({ leaseSeconds: 30, maxAttempts: 3 })
    .describe('Task execution settings.'),
  shutdown: z
    .strictObject({
      graceSeconds: timerSeconds()
        .min(0)
        .default(30)
        .describe(
          'On SIGTERM, how long running tasks may finish before their leases are released. @defaultValue 30',
        ),
      drainDelaySeconds: z
        .number()
        .min(0)
        .max(300)
        .default(0)
        .describe(
          'On SIGTERM, how long `/readyz` answers 503 while the API still serves, before the listener closes: time for a load balancer (a Kubernetes Service) to stop routing here, so requests already on their way are not refused. The Helm chart sets 5. @defaultValue 0',
        ),
    })
    .default({ graceSeconds: 30, drainDelaySeconds: 0 })
    .describe('Graceful shutdown.'),
  http: z
    .strictObject({
      bodyLimitBytes: z
        .number()
        .int()
        .positive()
        .default(1_048_576)
        .describe('Largest accepted request body; larger ones get 413. @defaultValue 1048576'),
      maxPageSize: z
        .number()
        .int()
        .positive()
        .max(1000)
        .default(100)
        .describe('Largest page a list endpoint returns. @defaultValue 100'),
      sseKeepAliveSeconds: timerSeconds()
        .positive()
        .default(15)
        .describe(
          "Interval of SSE keep-alive comments (proxies drop idle streams), also of the re-check of open streams' credentials (a key revoked or a role binding removed elsewhere ends the streams concerned within it); a client of an event stream (REST or MCP) that takes nothing of what waits for it for four intervals is disconnected. @defaultValue 15",
        ),
      maxSseStreamsPerTenant: z
        .number()
        .int()
        .positive()
        .default(CONFIG_DEFAULTS.maxSseStreamsPerTenant)
        .describe(
          'Open SSE event streams one tenant may hold in this process; more get 429. @defaultValue 100',
        ),
      maxSseStreamsPerPrincipal: z
        .number()
        .int()
        .positive()
        .default(CONFIG_DEFAULTS.maxSseStreamsPerPrincipal)
        .describe(
          "Open SSE event streams one principal (API key, OIDC subject) may hold in this process, within its tenant's; more get 429, so one caller cannot take every stream of its tenant. @defaultValue 50",
        ),
      requestTimeoutSeconds: z
        .number()
        .int()
        .positive()
        .max(3600)
        .default(CONFIG_DEFAULTS.requestTimeoutSeconds)
        .describe(
          'Time a client has to send a whole request (headers and body); a slower one gets 408 and its connection is closed. Answers (event streams, MCP waits) are not limited by it. @defaultValue 60',
        ),
      trustedProxies: z
        .array(
          z.string().refine((value) => isIP(value) !== 0 || parseCidr(value) !== undefined, {
            error: (issue) =>
              `${JSON.stringify(issue.input)} is not an IP address or a network in CIDR notation (e.g. 10.0.0.0/8)`,
          }),
        )
        .default([])
        .describe(
          "Reverse proxies in front of MAOS (IP addresses or CIDR networks, e.g. an ingress controller's pod network `10.0.0.0/8`) whose `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host` are believed: the client address of rate limits and audit records is then the last one in `X-Forwarded-For` that is not a trusted proxy, and the URL in `/mcp`'s protected-resource metadata the one the proxy was asked for. Empty (the default): the connection's peer, and forwarded headers are ignored (a client could forge them). @defaultValue []",
        ),
    })
    .default({
      bodyLimitBytes: 1_048_576,
      maxPageSize: 100,
      sseKeepAliveSeconds: 15,
      maxSseStreamsPerTenant: CONFIG_DEFAULTS.maxSseStreamsPerTenant,
      maxSseStreamsPerPrincipal: CONFIG_DEFAULTS.maxSseStreamsPerPrincipal,
      requestTimeoutSeconds: CONFIG_DEFAULTS.requestTimeoutSeconds,
      trustedProxies: [],
    })
    .describe('HTTP server limits.'),
  metrics: z
    .strictObject({
      enabled: z
        .boolean()
        .default(true)
        .describe('Serve Prometheus metrics at `/metrics`. @defaultValue true'),
      port: z
        .number()
        .int()
        .min(0)
        .max(65535)
        .optional()
        .describe(
          'Serve `/metrics` on this separate port (bound to `metrics.host`) instead of the API port; 0 picks a free one.',
        ),
      host: z
        .string()
        .min(1)
        .default('127.0.0.1')
        .describe(
          'Address of the separate metrics listener (only with `metrics.port`). @defaultValue 127.0.0.1',
        ),
      public: z
        .boolean()
        .default(false)
        .describe(
          'Let `/metrics` on the API port be scraped without credentials; on a separate port it never needs them. @defaultValue false',
        ),
      collectDefaults: z
        .boolean()
        .default(true)
        .describe(
          'Also export the Node.js process metrics (CPU, memory, event loop, GC). @defaultValue true',
        ),
    })
    .default({ enabled: true, host: '127.0.0.1', public: false, collectDefaults: true })
    .describe('Prometheus metrics.'),
  tracing: z
    .strictObject({
      captureMessageContent: z
        .boolean()
        .default(false)
        .describe(
          'Record prompts, completions and tool arguments on GenAI spans (opt-in: they may hold personal data). The exporter itself is configured by the standard OTEL_* variables. @defaultValue false',
        ),
    })
    .default({ captureMessageContent: false })
    .describe(
      'OpenTelemetry tracing; off unless OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT or OTEL_TRACES_EXPORTER is set.',
    ),
  logging: z
    .strictObject({
      format: z
        .enum(['auto', 'json', 'pretty'])
        .default('auto')
        .describe(
          'Log line format: ECS JSON, human-readable, or `auto` = pretty only on a terminal in the development environment. @defaultValue auto',
        ),
      environment: z
        .string()
        .min(1)
        .default('production')
        .describe(
          'Deployment environment, logged as `service.environment` (e.g. development, staging). @defaultValue production',
        ),
    })
    .default({ format: 'auto', environment: 'production' })
    .describe('Log output.'),
  mcp: z
    .strictObject({
      enabled: z
        .boolean()
        .default(true)
        .describe('Serve the MCP Streamable HTTP endpoint at `/mcp`. @defaultValue true'),
      allowedOrigins: z
        .array(browserOriginSchema)
        .default([])
        .describe(
          'Browser origins (e.g. https://console.example.com) allowed to call `/mcp` besides loopback ones, compared as browsers send them (host in lower case, default port dropped; no user, path or wildcard); any other Origin header is rejected (DNS-rebinding protection). @defaultValue []',
        ),
      allowedHosts: z
        .array(z.string().min(1))
        .default([])
        .describe(
          'Host header names accepted on `/mcp`: a name takes any port (e.g. maos.example.com), a name with a port only that one (maos.example.com:8443, as the Host header and a refusal show it). Loopback names are always accepted. Empty = only loopback names while the server binds to a loopback address, anything otherwise. @defaultValue []',
        ),
      maxSessions: z
        .number()
        .int()
        .positive()
        .default(1000)
        .describe('Open MCP sessions per process; more get 429. @defaultValue 1000'),
      maxSessionsPerTenant: z
        .number()
        .int()
        .positive()
        .default(100)
        .describe(
          'Open MCP sessions one tenant may hold in this process (and resumed MCP streams it may follow), so one tenant cannot fill `mcp.maxSessions`; more get 429. @defaultValue 100',
        ),
      maxSessionsPerPrincipal: z
        .number()
        .int()
        .positive()
        .default(50)
        .describe(
          'Open MCP sessions one caller (API key, token subject) may hold in this process (and resumed MCP streams it may follow), so one caller cannot fill its tenant’s `mcp.maxSessionsPerTenant`; more get 429. @defaultValue 50',
        ),
      maxRequestsInFlightPerSession: z
        .number()
        .int()
        .positive()
        .default(16)
        .describe(
          'Requests (tool calls, resource reads, …) one MCP session may have in flight on `/mcp` at once, from its arrival until its response is sent or it is cancelled; more get JSON-RPC error -32602 with `data.code` RESOURCE_LIMIT_EXCEEDED, so a client cannot start any number of long calls (an `orchestrate` that waits). @defaultValue 16',
        ),
      maxRequestsInFlightPerPrincipal: z
        .number()
        .int()
        .positive()
        .default(64)
        .describe(
          'Requests one caller (API key, token subject) may have in flight on `/mcp` at once in this process, over all its MCP sessions; more get JSON-RPC error -32602 with `data.code` RESOURCE_LIMIT_EXCEEDED. @defaultValue 64',
        ),
      sessionIdleSeconds: timerSeconds()
        .int()
        .positive()
        .default(1800)
        .describe('An MCP session without requests for this long is closed. @defaultValue 1800'),
      replayBufferSize: z
        .number()
        .int()
        .min(0)
        .default(500)
        .describe(
          'Newest messages kept per SSE stream in the store, so a client can resume a dropped stream with Last-Event-ID on any replica; 0 disables resumability. @defaultValue 500',
        ),
      replayRetentionSeconds: timerSeconds()
        .int()
        .positive()
        .default(600)
        .describe(
          'Stored SSE messages older than this are deleted; a client must resume a dropped stream within this time. @defaultValue 600',
        ),
    })
    .default({
      enabled: true,
      allowedOrigins: [],
      allowedHosts: [],
      maxSessions: 1000,
      maxSessionsPerTenant: 100,
      maxSessionsPerPrincipal: 50,
      maxRequestsInFlightPerSession: 16,
      maxRequestsInFlightPerPrincipal: 64,
      sessionIdleSeconds: 1800,
      replayBufferSize: 500,
      replayRetentionSeconds: 600,
    })
    .describe('MCP server (Streamable HTTP at `/mcp`; `maos mcp` for stdio).'),
  runners: z
    .record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/), runnerSchema)
    .superRefine(refineRunnerEnv)
    .default({})
    .describe('Named commands for agents of the `command` runtime.'),
  runnerAccess: runnerAccessConfigSchema,
  providers: providersConfigSchema,
  llm: llmConfigSchema,
  auth: authConfigSchema,
  audit: auditConfigSchema,
  rateLimit: rateLimitConfigSchema,
  retention: retentionConfigSchema,
  secrets: secretsConfigSchema,
  ssrf: ssrfConfigSchema,
  cors: corsConfigSchema,
  tls: tlsConfigSchema,
  webhooks: webhooksConfigSchema,
  egress: egressConfigSchema,
});

/**
 * The whole schema, with the cross-section rules: every LLM route and fallback names a configured
 * provider, and every runner `runnerAccess` lists is declared.
 */
export const configSchema = configShape.superRefine((config, ctx) => {
  refineLlmReferences(config, ctx);
  refineRunnerAccess(config, ctx);
  refineListenersApart(config, ctx);
});

/**
 * `metrics.port` and `port` naming one port on addresses that overlap whatever the machine: the
 * same address, or a wildcard (`0.0.0.0` and an IPv4 address, `::`, which takes IPv4 too, and any).
 * `maos serve` refuses it when it binds (listen-addresses.ts); `maos config check` said ok. Other
 * overlaps (a host name, an address of another interface) are left to that bind.
 */
function refineListenersApart(config: z.infer<typeof configShape>, ctx: z.RefinementCtx): void {
  const { port, host } = config;
  const metrics = config.metrics;
  if (metrics.port === undefined || metrics.port === 0 || metrics.port !== port) return;
  const a = host.toLowerCase();
  const b = metrics.host.toLowerCase();
  const overlap =
    a === b ||
    a === '::' ||
    b === '::' ||
    (a === '0.0.0.0' && isIP(b) === 4) ||
    (b === '0.0.0.0' && isIP(a) === 4);
  if (!overlap) return;
  const at = (address: string, listening: number) =>
    `${address.includes(':') ? `[${address}]` : address}:${listening}`;
  // Worded as the bind's refusal (listen-addresses.ts) it comes before.
  ctx.addIssue({
    code: 'custom',
    path: ['metrics', 'port'],
    message: `Cannot listen on ${at(metrics.host, metrics.port)} for metrics (setting \`metrics.port\`) and on ${at(host, port)} for the API (setting \`port\`): \`metrics.port\` and \`port\` name one port on overlapping addresses; set another \`metrics.port\`, or leave it unset to serve /metrics on the API port`,
  });
}

/** The resolved, frozen configuration. */
export type Config = z.infer<typeof configSchema>;
/** What a config file, the environment or flags may supply: every key optional. */
export type ConfigInput = z.input<typeof configSchema>;

/** Key names whose values are secrets: redacted by `maos config print` and the support bundle. */
export const SECRET_KEY_PATTERN =
  /(secret|password|passphrase|token|apikey|api_key|privatekey|signingkey|kek)/i;
