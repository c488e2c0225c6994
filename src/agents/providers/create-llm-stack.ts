// Builds everything LLM-related from the config and the store, for the composition root:
// the resilient client, the agent runtime, the orchestrator planner, the role service and the cache.

import type { Kysely } from 'kysely';
import { findUnpricedModels } from '../../config/llm-schema.ts';
import type { Config } from '../../config/schema.ts';
import { createLlmPlanner, type LlmPlanner } from '../../engine/planner.ts';
import {
  type Continuation,
  type ContinuationFailure,
  continueOrchestratedSession,
} from '../../engine/planner-continuation.ts';
import { createOrchestratorRuntime } from '../../engine/planner-tasks.ts';
import { createBudgetGuard } from '../../engine/session-budget.ts';
import type { CheckTenantDailyTokens } from '../../engine/tenant-usage-days.ts';
import { AppError } from '../../errors/app-error.ts';
import type { Logger } from '../../observability/logger.ts';
import type { Database } from '../../store/schema.ts';
import { createRoleService, type RoleService } from '../roles/role-service.ts';
import { createAgentMemory } from '../runtimes/ai-sdk/agent-memory.ts';
import {
  type AgentMessage,
  type AgentMessageOutcome,
  createMessagingTools,
  createStoreMessaging,
} from '../runtimes/ai-sdk/agent-tools.ts';
import { type AiSdkRuntimeOptions, createAiSdkRuntime } from '../runtimes/ai-sdk/ai-sdk-runtime.ts';
import type { ResponseCache } from '../runtimes/ai-sdk/response-cache.ts';
import { createStoreResponseCache } from '../runtimes/ai-sdk/store-response-cache.ts';
import type { AgentTelemetry } from '../runtimes/ai-sdk/traced-tools.ts';
import type { AgentRuntime } from '../runtimes/runtime.ts';
import { createModelCache } from './create-model.ts';
import { createLlmClient, type LlmCallObserver, type LlmClient } from './llm-client.ts';
import type { LlmDb } from './llm-tables.ts';
import { withModelSpendLedger } from './model-spend.ts';
import {
  createCacheModel,
  type ResponseCacheModelOptions,
  withResponseCache,
} from './response-cache-model.ts';
import {
  bindTenantScope,
  createTenantCredentialUse,
  createTenantModelCache,
  type TenantCredentialSource,
} from './tenant-models.ts';
import { validateLlmConfig } from './validate-llm-config.ts';

export interface LlmStack {
  client: LlmClient;
  /** Register with `runtimes.registerLlm(stack.runtime)`. */
  runtime: AgentRuntime;
  /** Pass as `planner` to createEngine. */
  planner: LlmPlanner;
  /** Built-in + custom roles: GET/POST /v1/roles and role validation. */
  roles: RoleService;
  /** Pass as `continueSession` to createEngine: phase gates, next phases and synthesis. */
  continueSession(
    trx: Kysely<Database>,
    session: { id: string; tenantId: string },
    now: number,
  ): Promise<Continuation | ContinuationFailure | null>;
  cache: ResponseCache;
}

export interface CreateLlmStackOptions {
  config: Pick<Config, 'providers' | 'llm'> & { tasks?: Pick<Config['tasks'], 'maxAttempts'> };
  db: Kysely<Database>;
  logger: Logger;
  /** Spans and metrics per provider call, breaker state and cache hits (observability/llm-telemetry.ts). */
  telemetry?: LlmCallObserver & {
    cacheLookup?(provider: string, hit: boolean): void;
    cacheReadFailed?(provider: string): void;
    /** The active agent span's telemetry (model call and tool spans, served model); see ai-sdk/traced-tools.ts. */
    agentScope?(): AgentTelemetry | undefined;
  };
  /** Called once per finished LLM agent call (tokens and cost metrics). */
  onUsage?: AiSdkRuntimeOptions['onUsage'];
  /**
   * Budget check at every output flush of an LLM agent (session usage + the call's estimate).
   * Default: the session budgets stored with each session (engine/session-budget.ts).
   */
  checkBudget?: AiSdkRuntimeOptions['checkBudget'];
  /** Called after an agent sent another agent a message (the engine appends the session event). */
  onAgentMessage?(message: AgentMessage & { id: string }): void;
  /** What became of each message an agent sent: stored, repeated, or refused (claim lost); metrics. */
  onAgentMessageOutcome?(outcome: AgentMessageOutcome): void;
  /** Tenant-stored provider keys: a tenant's calls use its own key when it stored one. */
  tenantCredentials?: TenantCredentialSource;
  /** fetch for the configured providers' base URLs (the egress proxy's). @defaultValue the global fetch */
  fetch?: typeof fetch;
  /** The tenant daily token quota: over it, an adaptive session plans no further phase. */
  checkTenantDailyTokens?: CheckTenantDailyTokens;
  /**
   * The same quota's cap (tokens per tenant and UTC day, > 0): over it, LLM agents and orchestrator
   * calls do not start, and running ones are stopped (engine/tenant-token-guard.ts).
   */
  maxDailyTokensPerTenant?: number;
}

/**
 * The LLM stack, or `undefined` when no provider is configured (MAOS then runs command tasks only).
 * Throws CONFIG_INVALID listing every inconsistency (e.g. a role routed to an unknown provider).
 */
export function createLlmStack(options: CreateLlmStackOptions): LlmStack | undefined {
  const { config, logger } = options;
  const problems = validateLlmConfig(config.providers, config.llm);
  if (problems.length > 0) {
    throw new AppError('CONFIG_INVALID', `Invalid configuration:\n  - ${problems.join('\n  - ')}`, {
      details: problems,
    });
  }
  const roles = createRoleService(options.db as unknown as LlmDb);
  if (Object.keys(config.providers).length === 0) return undefined;
  routeSdkWarnings(logger);
  const llmLogger = logger.child({ component: 'llm' });
  for (const unpriced of findUnpricedModels(config.providers, config.llm)) {
    llmLogger.warn({ provider: unpriced.provider, model: unpriced.model }, unpriced.message);
  }
  const cache = createStoreResponseCache(options.db as unknown as LlmDb);
  const cacheOptions: ResponseCacheModelOptions = {
    providers: config.providers,
    cache,
    onLookup: (provider, hit) => options.telemetry?.cacheLookup?.(provider, hit),
    onError: (error, provider, stage) => {
      if (stage === 'read') options.telemetry?.cacheReadFailed?.(provider);
      llmLogger.warn(
        { err: error, provider },
        `LLM response cache ${stage} failed; the call goes on uncached`,
      );
    },
    // A damaged entry is a lookup without an answer, as a failed read is (result="error").
    onUnreadable: (provider, first) => {
      options.telemetry?.cacheReadFailed?.(provider);
      if (first) {
        llmLogger.warn(
          { provider },
          'LLM response cache entry could not be read (damaged); the call went to the provider and its answer replaces the entry',
        );
      }
    },
  };
  const client = createLlmClient({
    providers: config.providers,
    llm: config.llm,
    logger: llmLogger,
    telemetry: options.telemetry,
    // Each model behind the response cache: a tenant's own models with the base URL it stored.
    getModel: options.tenantCredentials
      ? createTenantModelCache(
          config.providers,
          options.tenantCredentials,
          createCacheModel(cacheOptions),
          options.fetch,
        )
      : withResponseCache(createModelCache(config.providers, options.fetch), cacheOptions),
    // A tenant's own key has a circuit breaker of its own, and its own server a bulkhead.
    ...(options.tenantCredentials
      ? { tenantCredential: createTenantCredentialUse(options.tenantCredentials) }
      : {}),
  });
  const memory = createAgentMemory(options.db);
  const messaging = createStoreMessaging(
    options.db,
    options.onAgentMessage,
    Date.now,
    options.onAgentMessageOutcome,
  );
  const budgetGuard = options.checkBudget
    ? undefined
    : createBudgetGuard(options.db, {
        maxDailyTokensPerTenant: options.maxDailyTokensPerTenant ?? 0,
        logger: llmLogger,
      });
  const agentRuntime = createAiSdkRuntime({
    client,
    resolveRole: (tenantId, name) => roles.findRole(tenantId, name),
    loadHistory: memory.loadHistory,
    loadInbox: memory.loadInbox,
    onUsage: options.onUsage,
    checkBudget: options.checkBudget ?? budgetGuard?.check,
    prepareBudget: budgetGuard?.prepare,
    releaseBudget: budgetGuard?.release,
    agentTelemetry: () => options.telemetry?.agentScope?.(),
    // Offered to runs of the engine, whose claim (lease owner) fences what the tool stores.
    createTools: (task, ctx) =>
      config.llm.agentMessaging && task.agentId !== null && ctx.leaseOwner !== undefined
        ? createMessagingTools(messaging, task, { leaseOwner: ctx.leaseOwner, claimLost: ctx.claimLost })
        : undefined,
    dependencyOutputChars: config.llm.planner.dependencyOutputChars,
  });
  const planner = createLlmPlanner({
    client,
    listRoles: (tenantId) => roles.listRoles(tenantId),
    limits: config.llm.planner,
  });
  // Each task run's spend per provider and model is kept for its finish (usage by model).
  const runtime = withModelSpendLedger(
    routeOrchestratorTasks(agentRuntime, createOrchestratorRuntime(planner, options.db, budgetGuard)),
  );
  const continuation = {
    maxPhases: config.llm.planner.maxPhases,
    maxAttempts: config.tasks?.maxAttempts ?? 3,
    ...(options.checkTenantDailyTokens ? { checkTenantDailyTokens: options.checkTenantDailyTokens } : {}),
  };
  return {
    client,
    // Every call made for a task or a planning request runs as its tenant (tenant-models.ts).
    runtime: bindTenantScope(runtime),
    planner: bindTenantScope(planner),
    roles,
    cache,
    continueSession: (trx, session, now) => continueOrchestratedSession(trx, session, continuation, now),
  };
}

/**
 * Sends the AI SDK's warnings (unsupported settings, compatibility modes) to the process logger
 * instead of stderr. The SDK reads this from a global, so it is set once, unless already set.
 */
function routeSdkWarnings(logger: Logger): void {
  const holder = globalThis as { AI_SDK_LOG_WARNINGS?: unknown };
  if (holder.AI_SDK_LOG_WARNINGS !== undefined) return;
  const llmLogger = logger.child({ component: 'llm' });
  holder.AI_SDK_LOG_WARNINGS = (event: { warnings: unknown[]; provider?: string; model?: string }) => {
    llmLogger.warn(
      { provider: event.provider, model: event.model, warnings: event.warnings },
      'LLM provider warnings',
    );
  };
}

/**
 * The engine hands every task without a runner to the LLM runtime; the orchestrator's own tasks
 * (plan, phase gates, synthesis) go to the orchestrator runtime by their kind. Not by their role
 * `orchestrator`: a role is a name from the plan, and an agent's must never reach the orchestrator.
 */
function routeOrchestratorTasks(agents: AgentRuntime, orchestrator: AgentRuntime): AgentRuntime {
  return {
    kind: agents.kind,
    run: (task, ctx) => (task.kind === 'agent' ? agents : orchestrator).run(task, ctx),
  };
}
