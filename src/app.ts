// Composition root: opens the store, applies migrations, builds security, metrics, the LLM stack,
// the engine and the HTTP server (REST, SSE, MCP) and wires them together. Wiring only; every
// behaviour lives in the modules it imports.
import type { SpanProcessor } from '@opentelemetry/sdk-trace';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Kysely } from 'kysely';
import { type ProviderKeyCheck, startProviderKeyCheck } from './agents/providers/check-providers.ts';
import { createLlmStack } from './agents/providers/create-llm-stack.ts';
import { BUILT_IN_ROLES, findBuiltInRole } from './agents/roles/catalogue.ts';
import type { RoleDefinition } from './agents/roles/role.ts';
import { createCommandRuntime } from './agents/runtimes/command/command-runtime.ts';
import {
  claimReplicaDir,
  holdsLiveLease,
  type ReplicaDir,
  startReplicaDirSweeper,
} from './agents/runtimes/command/replica-dirs.ts';
import { killOrphanedRuns } from './agents/runtimes/command/run-records.ts';
import { createRunnerAccessCheck } from './agents/runtimes/command/runner-access.ts';
import {
  createSessionWorkspaceRemover,
  startWorkspaceSweeper,
  type WorkspaceSweeper,
} from './agents/runtimes/command/session-workspaces.ts';
import { copySessionWorkspace } from './agents/runtimes/command/workspace-copy.ts';
import { createRuntimeRegistry } from './agents/runtimes/runtime.ts';
import { readRunnerBaseEnv } from './config/runner-env.ts';
import type { Config } from './config/schema.ts';
import type { Engine } from './engine/engine-types.ts';
import { createEngine } from './engine/index.ts';
import { createLocalNotifier, sessionChannel } from './engine/notifier.ts';
import { createSessionDefaults } from './engine/session-defaults.ts';
import type { Actor } from './engine/session-service.ts';
import { createSteeringWithoutOrchestrator } from './engine/steering-without-orchestrator.ts';
import type { CheckTenantDailyTokens } from './engine/tenant-usage-days.ts';
import { createConsoleRoutesPlugin } from './http/routes/console.ts';
import {
  createCustomRoleRoutesPlugin,
  createCustomRolesWithoutProvider,
} from './http/routes/custom-roles.ts';
import { createMeRoutesPlugin } from './http/routes/me.ts';
import { createQuotaRoutesPlugin } from './http/routes/quotas.ts';
import { createSessionPlanRoutesPlugin } from './http/routes/session-plans.ts';
import { createSessionSteeringRoutesPlugin } from './http/routes/session-steering.ts';
import { createSessionTaskRoutesPlugin } from './http/routes/session-tasks.ts';
import { createTenantProviderRoutesPlugin } from './http/routes/tenant-providers.ts';
import { createUsageRoutesPlugin } from './http/routes/usage.ts';
import { createWebhookRoutesPlugin } from './http/routes/webhooks.ts';
import { buildHttpServer } from './http/server.ts';
import { createOrchestratorSteering } from './mcp/engine-steering.ts';
import { createMcpHttpPlugin } from './mcp/http-transport.ts';
import type { SessionSteering } from './mcp/steering-tools.ts';
import {
  createStreamEventLog,
  createStreamEventsRetentionTarget,
  type McpStreamEventsDb,
  streamEventsPruneIntervalSeconds,
} from './mcp/stream-event-log.ts';
import { createToolAuditor } from './mcp/tool-audit.ts';
import { readBuildRevision } from './observability/build-revision.ts';
import { connectQueueCounts, createEngineMetricsObserver } from './observability/engine-metrics.ts';
import { createReadinessChecks } from './observability/health.ts';
import { createHttpAccessLogPlugin } from './observability/http-access-log-plugin.ts';
import {
  createHttpMetricsPlugin,
  type MetricsListener,
  startMetricsListener,
} from './observability/http-metrics-plugin.ts';
import type { Logger } from './observability/logger.ts';
import { createMetrics, type Metrics } from './observability/metrics.ts';
import { createTelemetry, type Telemetry } from './observability/telemetry.ts';
import { assertConfigUsable } from './security/config-preflight.ts';
import { createSecurity, resolveCheckpointDir, type Security } from './security/create-security.ts';
import { createEgress } from './security/egress-proxy.ts';
import { withTenantQuotas } from './security/quota-guarded-service.ts';
import { createSecurityRoutesPlugin } from './security/security-routes-plugin.ts';
import type { SecurityDb } from './security/security-tables.ts';
import { createTenantProviderCredentialsFromConfig } from './security/tenant-provider-credentials.ts';
import { createTlsServing, type TlsReloadOutcome } from './security/tls-reload.ts';
import { createDatabase, type DatabaseHandle, refuseRootInDataDir } from './store/db.ts';
import { migrateToLatest } from './store/migrate.ts';
import type { PeriodicJob } from './store/periodic-job.ts';
import { createClusterNotifier } from './store/pg-notifier.ts';
import { type RetentionJob, type RetentionPassResult, startRetentionJob } from './store/retention.ts';
import { acquireServerLock, type ServerLock } from './store/server-lock.ts';
import { waitForDatabase } from './store/wait-for-database.ts';
import { VERSION } from './version.ts';
import { webhookDeliveriesTarget } from './webhooks/delivery-retention.ts';
import { type DeliveryWorker, startDeliveryWorker } from './webhooks/delivery-worker.ts';
import { countPendingDeliveries } from './webhooks/outbox.ts';
import { orphanedDeliveriesTarget } from './webhooks/subscription-sweep.ts';
import { createWebhookService } from './webhooks/webhook-service.ts';
import type { WebhooksDb } from './webhooks/webhook-tables.ts';

/**
 * Pending-connection queue of the listening socket. Node's default (511) overflows when many clients
 * (SSE followers after a deploy, a load balancer's pool) connect at once, and the overflow shows up
 * as connection errors; the kernel still caps it at net.core.somaxconn.
 */
export const LISTEN_BACKLOG = 4096;

/**
 * How old the worker loop's last tick may be before readiness fails: a loop silent for a lease
 * length can no longer extend its leases (its tasks are being lost), and it ticks at least every
 * poll interval, so three missed polls also count.
 */
export function workerBeatMaxAgeMs(config: Pick<Config, 'workers' | 'tasks'>): number {
  return Math.max(3 * config.workers.pollIntervalMs, config.tasks.leaseSeconds * 1000);
}

/** How API callers authenticate (config `auth.mode`). */
export type AuthMode = Config['auth']['mode'];

export interface AppDeps {
  logger: Logger;
  /** Extra Fastify plugins, applied to every route after the built-in ones. */
  plugins?: FastifyPluginAsync[];
  /** Test seam: span processors (e.g. an in-memory exporter); tracing is then on regardless of OTEL_*. */
  spanProcessors?: SpanProcessor[];
  /**
   * Aborted (a signal while `maos serve` starts): the wait for the database ends at once and
   * createApp fails with the signal's reason, having removed what it created.
   */
  signal?: AbortSignal;
}

export interface App {
  config: Readonly<Config>;
  database: DatabaseHandle;
  engine: Engine;
  http: FastifyInstance;
  metrics: Metrics;
  /** Spans and their adapters (`maos mcp` traces its stdio requests with them). */
  telemetry: Telemetry;
  /** Plan approval and steering as the MCP tools use them; absent without an LLM provider. */
  steering?: SessionSteering;
  /** The roles a tenant's sessions can use (built-in plus its custom ones), as `/mcp` lists them. */
  listRoles(actor: Actor): Promise<RoleDefinition[]>;
  security: Security;
  authMode: AuthMode;
  /** Re-reads tls.certFile/tls.keyFile now (SIGHUP); absent without TLS. */
  reloadTls?: () => Promise<TlsReloadOutcome>;
  /**
   * Starts all that runs without listening (`maos mcp` in embedded mode; start() calls it once it
   * listens): periodic audit checkpoints, the PostgreSQL LISTEN notifier, the engine, webhook
   * deliveries, retention and the workspace sweeper. Before the engine, it kills the runner
   * processes a previous server on this data directory left running (on PostgreSQL: those of gone
   * replicas), so their tasks never run again beside them.
   */
  startBackground(): Promise<void>;
  /** Starts the metrics listener, listens, then starts the rest (startBackground); returns the base URL. */
  start(): Promise<string>;
  /**
   * Runs a pass of the retention job now, as its timer does (tests, tooling); undefined before
   * startBackground() (or start()) and after stop().
   */
  runRetentionOnce(): Promise<RetentionPassResult | undefined>;
  /**
   * Graceful stop: readiness turns 503 (for `shutdown.drainDelaySeconds` while the API still
   * serves), the server stops accepting and ends SSE streams, running
   * tasks get `shutdown.graceSeconds` to finish before their leases are released, the store closes.
   * Every step runs even when one before it failed (each failure is logged); the outcome names the
   * failed ones, so that `maos serve` can exit non-zero after a stop that was not clean.
   */
  stop(): Promise<StopOutcome>;
}

/** How a stop went: the shutdown steps that failed (`http`, `engine`, … `telemetry`), in order. */
export interface StopOutcome {
  /** Empty after a clean stop. */
  failedSteps: string[];
}

/** Builds the application from a resolved config. Nothing listens or runs until `start()`. */
export async function createApp(config: Readonly<Config>, deps: AppDeps): Promise<App> {
  const { logger } = deps;
  // Before anything touches the data directory: a server that will refuse its auth, TLS or key
  // settings must not first create the directory, migrate the database or generate a signing key.
  assertConfigUsable(config);
  const metrics = createMetrics({
    version: VERSION,
    revision: readBuildRevision(),
    collectDefaults: config.metrics.collectDefaults,
    onSourceError: (source, error) => logger.warn({ err: error, source }, 'metrics source failed'),
  });
  const telemetry = createTelemetry({
    config,
    metrics,
    logger,
    serviceVersion: VERSION,
    spanProcessors: deps.spanProcessors,
  });
  let database: DatabaseHandle;
  let serverLock: ServerLock | undefined;
  // PostgreSQL: this replica's directory for its runners' HOMEs and run records (replica-dirs.ts).
  let replicaDir: ReplicaDir | undefined;
  try {
    // Run as root on the service user's data directory: refused before the lock, run records, keys
    // or checkpoints would be written there as root's.
    refuseRootInDataDir(config, [resolveCheckpointDir(config)]);
    // Database spans only when tracing is on: an untraced process gets no per-query logging work.
    database = createDatabase(config, {
      ...(telemetry.tracing.enabled ? { querySpanLogger: telemetry.querySpanLogger } : {}),
      // PostgreSQL: connections the server ended while idle (a failover, a restart), met and replaced.
      poolObserver: {
        endedConnection: (outcome) => metrics.recordStoreEndedConnection(outcome),
        idleConnectionDiscarded: () => metrics.recordStoreIdleConnectionDiscarded(),
        // Every pooled connection in use too long: a 503 a busy pool, not the database, caused.
        poolBusy: () => metrics.recordStorePoolWaitTimeout(),
      },
      onCheckpointFailure: (message) =>
        logger.warn(
          { reason: message },
          'background WAL checkpoints stopped; SQLite checkpoints inline again',
        ),
    });
  } catch (error) {
    await telemetry.shutdown();
    throw error;
  }
  try {
    // SQLite: one server per database file; a second `maos serve` on it is refused here.
    if (database.dialect === 'sqlite') serverLock = acquireServerLock(database.location);
    else replicaDir = await claimReplicaDir(config.dataDir);
  } catch (error) {
    await database.close();
    await telemetry.shutdown();
    throw error;
  }
  let shuttingDown = false;
  // Outbound calls (providers, tenant base URLs, webhooks, OIDC) through `egress.proxy`, if set.
  const egress = createEgress(config);
  try {
    // The first use of the database: PostgreSQL not reachable yet (started beside this replica) is
    // waited for, up to store.startupWaitMs; nothing listens meanwhile.
    const reached = await waitForDatabase(database, config, () => migrateToLatest(database.db), {
      onWaiting: (line, reason) => logger.warn({ reason, database: database.location }, line),
      ...(deps.signal ? { signal: deps.signal } : {}),
    });
    if (reached.attempts > 1) logger.info({ attempts: reached.attempts }, 'the database is reachable');
    const applied = reached.value;
    if (applied.length > 0) logger.info({ migrations: applied }, 'migrations applied');

    const security = createSecurity({
      config,
      db: database.db as unknown as SecurityDb,
      logger,
      metrics,
      fetch: egress.fetch,
    });
    const providerCredentials = createTenantProviderCredentialsFromConfig(
      database.db as unknown as SecurityDb,
      config,
      egress.ssrf,
    );
    const webhooksDb = database.db as unknown as WebhooksDb;
    const webhooks = createWebhookService({
      db: webhooksDb,
      kekRing: config.secrets.kekRing,
      ssrf: egress.ssrf,
      maxPerTenant: config.webhooks.maxPerTenant,
      secretRotationGraceSeconds: config.webhooks.secretRotationGraceSeconds,
      logger: logger.child({ component: 'webhooks' }),
    });
    // The daily token quota also bounds running sessions: no further adaptive phase, no steering,
    // and no LLM call starts or goes on over it.
    const tenantQuotas = security.quotas;
    const checkTenantDailyTokens: CheckTenantDailyTokens | undefined =
      tenantQuotas && config.rateLimit.maxDailyTokensPerTenant > 0
        ? (trx, tenantId, consequence) => tenantQuotas.assertDailyTokensLeft(tenantId, trx, consequence)
        : undefined;
    const llm = createLlmStack({
      config,
      db: database.db,
      ...(checkTenantDailyTokens
        ? { checkTenantDailyTokens, maxDailyTokensPerTenant: config.rateLimit.maxDailyTokensPerTenant }
        : {}),
      logger,
      telemetry: telemetry.llm,
      tenantCredentials: providerCredentials,
      fetch: egress.fetch,
      // The `agent.message` event is stored with the message; wake the session's event streams.
      onAgentMessage: (message) => wakeNotifier.publish(sessionChannel(message.sessionId)),
      onAgentMessageOutcome: (outcome) => metrics.recordAgentMessage(outcome),
    });

    // Workspaces of deleted sessions: removed at once on the replica that deleted (below), by the
    // sweeper on every replica for the rest.
    const workspaceCleanup = {
      dataDir: config.dataDir,
      logger: logger.child({ component: 'workspaces' }),
      onRemoved: (count: number) => metrics.recordWorkspacesRemoved(count),
    };
    const runtimes = createRuntimeRegistry();
    runtimes.registerCommand(
      createCommandRuntime({
        runners: config.runners,
        mayUseRunner: createRunnerAccessCheck(config.runnerAccess),
        dataDir: config.dataDir,
        ...(replicaDir ? { replicaDir: replicaDir.path } : {}),
        baseEnv: readRunnerBaseEnv(),
      }),
    );
    if (llm) runtimes.registerLlm(llm.runtime);
    // Cluster mode: wake-ups between replicas over LISTEN/NOTIFY (in-process otherwise).
    const notifier = createClusterNotifier(config, database, logger);
    // Shared with the approval routes, which wake the workers and SSE readers of a session they start.
    const wakeNotifier = notifier ?? createLocalNotifier();
    // No cap configured: no check, and no per-tenant lock on session inserts.
    const quotaCaps =
      config.rateLimit.maxConcurrentSessionsPerTenant + config.rateLimit.maxDailyTokensPerTenant;
    const quotas = quotaCaps > 0 ? security.quotas : null;
    const sessionDefaults = createSessionDefaults(config.llm);
    // One observer (it counts busy slots): the engine's and the plan rejection's session ends.
    const engineObserver = createEngineMetricsObserver(metrics, { slots: config.workers.concurrency });
    const engine = createEngine({
      config,
      db: database.db,
      dialect: database.dialect,
      // SQLite with synchronous=FULL: the engine's own progress is acknowledged at commit, flushed
      // right after; nothing read leaves the process before that (write-queue.ts).
      ...(database.durability
        ? { durability: database.durability, deferCommits: !config.store.syncEngineCommits }
        : {}),
      notifier: wakeNotifier,
      logger,
      runtimes,
      // The replica directory's lock names it: sweeps ask the store for its leases.
      ...(replicaDir ? { workerId: replicaDir.workerId } : {}),
      observer: engineObserver,
      // One trace per session (stored with it) and a span per task attempt, only when tracing is on.
      ...(telemetry.tracing.enabled ? { genAi: telemetry.genAi } : {}),
      sessionDefaults,
      onSessionDeleted: createSessionWorkspaceRemover(workspaceCleanup),
      onSessionRetry: (fromId, toId) => copySessionWorkspace(config.dataDir, fromId, toId),
      // Tenant quotas re-checked in the insert's transaction: exact under concurrent submits.
      ...(quotas ? { admitSession: (trx, tenantId) => quotas.assertSessionAllowed(tenantId, trx) } : {}),
      ...(llm
        ? {
            planner: llm.planner,
            continueSession: llm.continueSession,
            findRole: (tenantId: string, name: string) => llm.roles.findRole(tenantId, name),
          }
        : {}),
    });
    connectQueueCounts(metrics, () => engine.getQueueCounts());

    const readiness = createReadinessChecks({
      db: database.db,
      dialect: database.dialect,
      isShuttingDown: () => shuttingDown,
      worker: {
        slots: config.workers.concurrency,
        lastBeatAt: () => engine.lastHeartbeatAt?.(),
        maxAgeMs: workerBeatMaxAgeMs(config),
      },
    });
    metrics.setSources({
      readiness: async () => {
        const checks = await readiness();
        return Object.fromEntries(Object.entries(checks).map(([name, check]) => [name, check.ok]));
      },
      dataDir: config.dataDir,
      pendingWebhookDeliveries: () => countPendingDeliveries(webhooksDb),
      ...(notifier ? { listenConnected: () => notifier.isListening() } : {}),
    });
    const listRoles = async (actor: Actor) =>
      llm ? llm.roles.listRoles(actor.tenantId) : [...BUILT_IN_ROLES];
    const findRole = async (actor: Actor, name: string) =>
      llm ? llm.roles.findRole(actor.tenantId, name) : findBuiltInRole(name);
    const metricsOnOwnPort = config.metrics.port !== undefined;
    // Plan approval and steering (REST routes and MCP tools) need the LLM orchestrator.
    const steering = llm
      ? createOrchestratorSteering({
          config,
          db: database.db,
          roles: llm.roles,
          runtimes,
          notifier: wakeNotifier,
          ...(checkTenantDailyTokens ? { checkTenantDailyTokens } : {}),
          observer: engineObserver,
        })
      : undefined;
    // HTTPS when tls.certFile is set, following renewals of the files (tls.reloadIntervalSeconds).
    const tls = createTlsServing({ tls: config.tls, logger, metrics });
    const http = await buildHttpServer({
      ...(tls ? { serverFactory: tls.serverFactory } : {}),
      config,
      service: engine.service,
      logger,
      readiness,
      listRoles,
      findRole,
      authenticate: security.http.authenticate,
      observer: {
        problemSent: (code) => metrics.recordError(code),
        sseConnection: (delta) => metrics.trackSseConnection(delta),
        sseEventsSent: (count) => metrics.recordSseEventsSent(count),
        sseStreamDropped: () => metrics.recordSseStreamDropped(),
        sseStreamRefused: () => metrics.recordRateLimitRejection('streams'),
      },
      plugins: [
        telemetry.httpPlugin,
        createHttpMetricsPlugin({
          metrics,
          exposeRoute: config.metrics.enabled && !metricsOnOwnPort,
          publicRoute: config.metrics.public,
        }),
        createHttpAccessLogPlugin(),
        security.http.plugin,
        createSecurityRoutesPlugin({
          db: database.db as unknown as SecurityDb,
          security,
          maxPageSize: config.http.maxPageSize,
        }),
        createMcpHttpPlugin({
          service: withTenantQuotas(engine.service, security.quotas),
          config,
          authorize: security.http.authorizeRequest,
          auditToolCall: createToolAuditor({
            auditLog: security.auditLog,
            getPrincipal: security.http.getPrincipal,
            logger,
          }),
          listRoles,
          ...(steering ? { steering } : {}),
          streamEvents: createStreamEventLog(database.db as unknown as Kysely<McpStreamEventsDb>, {
            onStoreError: (error) => logger.warn({ err: error }, 'an MCP stream message was not stored'),
            onUnreadableMessage: (unreadable) =>
              logger.warn(
                unreadable,
                'a stored MCP stream message cannot be read (a hand edit gone wrong?); resumptions of its stream skip it',
              ),
            // Grouped with the engine's writes, the fsync off the event loop, ids sent once on disk.
            runInsert: (insert) =>
              engine.queue.run((trx) => insert(trx as unknown as Kysely<McpStreamEventsDb>), {
                deferred: true,
              }),
            whenDurable: () => engine.queue.whenDurable(),
          }),
          onRequest: (method, outcome) => metrics.recordMcpRequest(method, outcome),
          onStreamDropped: () => metrics.recordMcpStreamDropped(),
          onRequestRefused: () => metrics.recordRateLimitRejection('mcp_requests'),
          onSessionRefused: () => metrics.recordRateLimitRejection('mcp_sessions'),
          telemetry: telemetry.mcpServer('tcp'),
          logger,
        }),
        createSessionPlanRoutesPlugin({
          db: database.db,
          reportDamagedJson: engine.reportDamagedJson,
          whenDurable: () => engine.queue.whenDurable(),
        }),
        createSessionTaskRoutesPlugin({
          db: database.db,
          maxPageSize: config.http.maxPageSize,
          whenDurable: () => engine.queue.whenDurable(),
        }),
        createTenantProviderRoutesPlugin({ credentials: providerCredentials }),
        createUsageRoutesPlugin({ db: database.db, reportDamagedJson: engine.reportDamagedJson }),
        createMeRoutesPlugin({ getPrincipal: security.http.getPrincipal }),
        createQuotaRoutesPlugin({ db: database.db, quotas: config.rateLimit, sessionDefaults }),
        createWebhookRoutesPlugin({ webhooks, maxPageSize: config.http.maxPageSize }),
        // Custom roles only matter to LLM agents: without a provider their routes refuse, saying so.
        createCustomRoleRoutesPlugin({ roles: llm?.roles ?? createCustomRolesWithoutProvider() }),
        createSessionSteeringRoutesPlugin(steering ?? createSteeringWithoutOrchestrator(engine.service)),
        createConsoleRoutesPlugin(undefined, config.auth),
        ...(deps.plugins ?? []),
      ],
    });

    let metricsListener: MetricsListener | undefined;
    let retention: RetentionJob | undefined;
    let workspaceSweeper: WorkspaceSweeper | undefined;
    let replicaSweeper: PeriodicJob<unknown> | undefined;
    let deliveryWorker: DeliveryWorker | undefined;
    let providerKeyCheck: ProviderKeyCheck | undefined;
    let stopping: Promise<StopOutcome> | undefined;
    async function startBackground(): Promise<void> {
      // Audit checkpoints: start() also calls security.start(), which starts the same timer (once)
      // and logs the hints of an API server (the first API key), which embedded mode has no use for.
      security.auditLog.startCheckpointTimer(config.audit.checkpointIntervalSeconds * 1000);
      await notifier?.start();
      // Runners a previous server on this data directory left running (it died without stopping
      // them) go before the engine re-runs their tasks: a command never runs twice at once. On
      // SQLite the server lock makes this process the directory's one server; cluster replicas may
      // share a volume, so each sweeps only the directories of replicas that are gone.
      const orphans = serverLock ? killOrphanedRuns(config.dataDir) : 0;
      if (orphans > 0) {
        logger.warn({ orphans }, 'stopped runner processes a previous server left running');
        metrics.recordOrphanedRunnersKilled(orphans);
      }
      if (replicaDir) {
        replicaSweeper = startReplicaDirSweeper({
          dataDir: config.dataDir,
          ownPath: replicaDir.path,
          holdsLease: (workerId) => holdsLiveLease(database.db, workerId),
          // A gone replica's runners are killed about when its leases expire and its tasks run again.
          intervalMs: config.tasks.leaseSeconds * 1000,
          logger,
          onSwept: (sweep) => {
            metrics.recordReplicaDirectoriesRemoved(sweep.removed);
            metrics.recordOrphanedRunnersKilled(sweep.killed);
          },
        });
        await replicaSweeper.runOnce();
      }
      engine.start();
      // Every replica sends webhook deliveries; leases keep two from sending the same one.
      deliveryWorker = startDeliveryWorker({
        db: webhooksDb,
        config: config.webhooks,
        kekRing: config.secrets.kekRing,
        ssrf: egress.ssrf,
        logger: logger.child({ component: 'webhooks' }),
        ...(notifier ? { notifier } : {}),
        whenDurable: () => engine.queue.whenDurable(),
        auditLog: security.auditLog,
        observer: {
          attempted: (event, outcome, seconds) => metrics.recordWebhookAttempt(event, outcome, seconds),
          disabled: (reason) => metrics.recordWebhookDisabled(reason),
        },
      });
      // Every replica runs it; the retention advisory lock lets one at a time do the deleting.
      retention = startRetentionJob({
        db: database.db,
        config: config.retention,
        logger,
        onDeleted: (table, count) => metrics.recordRetentionDeleted(table, count),
        // As DELETE /v1/sessions/:id: the MCP subscriptions and event streams of each session it
        // deleted are woken (on PostgreSQL on every replica, one NOTIFY per batch), and find it gone.
        onSessionsDeleted: (ids) => {
          for (const id of ids) wakeNotifier.publish(sessionChannel(id));
        },
        // What a deleted subscription's deletion left (a stop between its batches), whatever the
        // retention of deliveries.
        targets: [
          orphanedDeliveriesTarget(),
          ...(config.webhooks.deliveryRetentionDays > 0
            ? [webhookDeliveriesTarget(config.webhooks.deliveryRetentionDays)]
            : []),
        ],
        // MCP replay rows (TTL of minutes) on their own cadence and lock; see store/retention.ts.
        frequent: {
          targets: [
            createStreamEventsRetentionTarget({
              retentionMs: config.mcp.replayRetentionSeconds * 1000,
              // A session's activity on another replica keeps it open until it is idle this long.
              activityRetentionMs: config.mcp.sessionIdleSeconds * 1000,
              perStreamLimit: config.mcp.replayBufferSize,
            }),
          ],
          intervalSeconds: streamEventsPruneIntervalSeconds(config.mcp.replayRetentionSeconds),
        },
      });
      // Every replica, without the retention lock: each has its own workspaces.
      workspaceSweeper = startWorkspaceSweeper({
        ...workspaceCleanup,
        db: database.db,
        intervalSeconds: config.retention.intervalSeconds,
      });
    }
    return {
      config,
      database,
      engine,
      http,
      metrics,
      telemetry,
      security,
      ...(steering ? { steering } : {}),
      listRoles,
      authMode: config.auth.mode,
      ...(tls ? { reloadTls: tls.reload } : {}),
      startBackground,
      runRetentionOnce: async () => (stopping === undefined ? retention?.runOnce() : undefined),
      async start() {
        if (config.metrics.enabled && config.metrics.port !== undefined) {
          metricsListener = await startMetricsListener(metrics, {
            host: config.metrics.host,
            port: config.metrics.port,
          });
        }
        const listened = await http.listen({ host: config.host, port: config.port, backlog: LISTEN_BACKLOG });
        // Fastify names the address http:// even when the server factory serves TLS.
        const url = tls ? listened.replace(/^http:/, 'https:') : listened;
        tls?.start();
        // Not awaited: a wrong key is logged as a warning without holding up the start.
        if (llm && config.llm.checkKeysAtStart)
          providerKeyCheck = startProviderKeyCheck(config.providers, logger.child({ component: 'llm' }), {
            fetch: egress.fetch,
          });
        security.start();
        await startBackground();
        return url;
      },
      stop() {
        stopping ??= (async () => {
          shuttingDown = true;
          providerKeyCheck?.stop();
          tls?.stop();
          // Readiness is 503 from here; the API keeps answering until load balancers have noticed.
          const drainMs = config.shutdown.drainDelaySeconds * 1000;
          if (drainMs > 0) await new Promise((resolve) => setTimeout(resolve, drainMs));
          // Every step runs even when one before it failed (e.g. the database was lost meanwhile):
          // a step skipped would leave its timers, sockets or pool open and the process would not exit.
          const failedSteps: string[] = [];
          const step = async (name: string, work: () => unknown): Promise<void> => {
            try {
              await work();
            } catch (error) {
              failedSteps.push(name);
              logger.error({ err: error, step: name }, 'shutdown step failed; continuing');
            }
          };
          await step('http', () => http.close());
          await step('engine', () => engine.stop({ graceMs: config.shutdown.graceSeconds * 1000 }));
          await step('webhooks', () => deliveryWorker?.stop());
          await step('retention', () => retention?.stop());
          await step('workspace sweeper', () => workspaceSweeper?.stop());
          await step('replica sweeper', () => replicaSweeper?.stop());
          await step('notifier', () => notifier?.close());
          await step('metrics listener', () => metricsListener?.close());
          await step('security', () => security.close());
          await step('egress', () => egress.close());
          await step('database', () => database.close());
          serverLock?.release();
          replicaDir?.release();
          await step('telemetry', () => telemetry.shutdown());
          return { failedSteps };
        })();
        return stopping;
      },
    };
  } catch (error) {
    // Nothing ran in the replica directory yet: removed first, before closing the pool waits for an
    // attempt to connect (up to store.connectTimeoutMs) or a migration under way.
    replicaDir?.release();
    await egress.close();
    await database.close();
    serverLock?.release();
    await telemetry.shutdown();
    throw error;
  }
}
