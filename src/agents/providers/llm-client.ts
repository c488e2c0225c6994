// Calls an LLM for a role with every resilience rule in one place: route → provider chain
// (fallbacks), circuit breaker and bulkhead per provider, retries with backoff, per-call timeout.

import type { LanguageModel } from 'ai';
import { type LlmConfig, type PriceConfig, type ProvidersConfig, priceOf } from '../../config/llm-schema.ts';
import { AppError } from '../../errors/app-error.ts';
import type { Logger } from '../../observability/logger.ts';
import { type Bulkhead, createBulkhead } from './bulkhead.ts';
import { runWithCallTimer, startCallTimer } from './call-timer.ts';
import { type CircuitBreaker, type CircuitState, createCircuitBreakerSet } from './circuit-breaker.ts';
import { createModelCache } from './create-model.ts';
import { recordModelSpend, startModelAttempt } from './model-spend.ts';
import { runRedactingStreamErrors } from './provider-error-redaction.ts';
import {
  type ClassifiedFailure,
  classifyProviderError,
  type FailureSite,
  toProviderAppError,
} from './provider-errors.ts';
import { countModelCalls, type ModelCallTally } from './response-cache-model.ts';
import { callWithRetry, type RetryHooks } from './retry.ts';

/**
 * The default bound of a whole model call (`maxCallSeconds`). Why an hour: an answer streams at tens
 * of tokens per second, so even 32k tokens on a slow local model fit, while a server that trickles
 * bytes without end does not hold a bulkhead slot and the task for ever.
 */
const DEFAULT_MAX_CALL_SECONDS = 3600;

/** The provider and model one attempt runs against. */
export interface CallTarget {
  provider: string;
  model: string;
  temperature?: number;
  maxOutputTokens: number;
  price: PriceConfig | undefined;
}

/** What one attempt receives. `signal` combines the caller's signal and the per-call timeout. */
export interface AttemptContext {
  model: LanguageModel;
  target: CallTarget;
  signal: AbortSignal;
  /** 1-based, across all providers of the chain. */
  attempt: number;
  /**
   * Another model call of the attempt starts (an agent's tool loop): the per-call limits count
   * afresh from now (call-timer.ts), so each model call has the whole of them.
   */
  nextCall(): void;
  /**
   * The model call in progress ended and the attempt runs its tools until nextCall: the per-call
   * limits bound the provider's answers, not that time.
   */
  betweenCalls(): void;
}

export interface LlmCallResult<T> {
  value: T;
  target: CallTarget;
  attempts: number;
}

export interface LlmClient {
  /** Whether any provider is configured (otherwise LLM tasks cannot run). */
  hasProviders(): boolean;
  /** The provider chain of a role: its route (or the default) followed by its fallbacks. */
  resolveChain(role: string): CallTarget[];
  /**
   * Runs `attempt` against the role's chain. Retryable failures are retried with backoff, then the
   * next provider is tried; non-retryable ones (401, 400, 404) fail at once with a clear AppError.
   */
  call<T>(
    role: string,
    signal: AbortSignal,
    attempt: (ctx: AttemptContext) => Promise<T>,
  ): Promise<LlmCallResult<T>>;
}

/**
 * Telemetry of each attempt (spans, duration, tokens, cost, error types) and breaker state; implemented
 * by observability/llm-telemetry.ts. An agent's runtime takes its attempts over and records each
 * model call of its tool loop on its own (the agent scope's model calls); planner and synthesis
 * calls make one model call per attempt. Structural, so the client does not depend on OpenTelemetry.
 */
export interface LlmCallObserver {
  observeCall<T>(
    target: {
      provider: string;
      model: string;
      serverAddress?: string;
      serverPort?: number;
      maxTokens?: number;
      temperature?: number;
      /** The caller's signal (not the per-call timeout): a call it stopped is no provider failure. */
      signal?: AbortSignal;
    },
    run: () => Promise<T>,
    usageOf: (value: T) => {
      inputTokens?: number;
      outputTokens?: number;
      cacheReadTokens?: number;
      costUsd?: number;
    },
  ): Promise<T>;
  circuitStateChanged?(provider: string, state: CircuitState): void;
  /** A call the provider's open circuit refused: counted as a provider error, though no call was made. */
  circuitRejected?(provider: string): void;
}

/** A tenant's own credential, used for a call instead of the operator's. */
export interface TenantCredentialUse {
  tenantId: string;
  /** It names a base URL: the call goes to the tenant's own server, not the operator's. */
  ownBaseURL: boolean;
}

/**
 * Whose credential one attempt uses, read once for it (tenant-models.ts): `use` picks the attempt's
 * breaker and bulkhead, and the attempt's model (getModel's third argument) sends its first request
 * with that same read instead of reading and decrypting the credential again.
 */
export interface CredentialLookup {
  /** The tenant's own credential, or undefined for the operator's. */
  use: TenantCredentialUse | undefined;
}

export interface LlmClientOptions {
  providers: ProvidersConfig;
  llm: LlmConfig;
  logger?: Logger;
  telemetry?: LlmCallObserver;
  /**
   * Resolves the model of a provider (default: one model per provider and model id from the config),
   * for one attempt: `lookup` is the credential read for it, when tenantCredential is set.
   */
  getModel?: (provider: string, modelId: string, lookup?: CredentialLookup) => LanguageModel;
  /**
   * The tenant whose own stored credential an attempt at `provider` uses (tenant-models.ts), and
   * whether it names a base URL of its own; `use` undefined for the operator's credential. Such
   * calls are judged by a circuit breaker of that tenant's (its rate-limited account or unreachable
   * server must not open the circuit for every tenant) and, to its own server, take slots of a
   * bulkhead of their own (its hanging server must not hold the slots every tenant waits for).
   */
  tenantCredential?: (provider: string) => Promise<CredentialLookup>;
  /** Replaceable for unit tests. */
  sleep?: RetryHooks['sleep'];
  now?: () => number;
}

/** The usage an attempt's value reports, when it has one (agent calls, plan rounds, synthesis). */
function usageOf(value: unknown): {
  inputTokens?: number;
  outputTokens?: number;
  cacheReadTokens?: number;
  costUsd?: number;
} {
  const usage = (value as { usage?: unknown } | null)?.usage;
  return typeof usage === 'object' && usage !== null ? (usage as Record<string, number>) : {};
}

function serverAddressOf(baseURL: string | undefined): string | undefined {
  if (!baseURL) return undefined;
  try {
    return new URL(baseURL).hostname;
  } catch {
    return undefined;
  }
}

/** The port of a base URL (the scheme's default when it names none), for the `server.port` span attribute. */
function serverPortOf(baseURL: string | undefined): number | undefined {
  if (!baseURL) return undefined;
  try {
    const url = new URL(baseURL);
    if (url.port) return Number(url.port);
    return url.protocol === 'https:' ? 443 : url.protocol === 'http:' ? 80 : undefined;
  } catch {
    return undefined;
  }
}

/** Raised inside an attempt when the provider's circuit is open: moves on to the fallback. */
class CircuitOpenError extends Error {
  constructor(provider: string) {
    super(`circuit open for provider '${provider}'`);
    this.name = 'CircuitOpenError';
  }
}

/**
 * The Retry-After a provider asked for that was longer than the client waits: "asked to wait 120 s
 * (Retry-After), longer than llm.retry.maxRetryAfterSeconds (60 s): not waited for". Whole seconds
 * rounded up, so the wait never reads as within the limit.
 */
function waitNotTaken(failure: ClassifiedFailure, maxRetryAfterSeconds: number): string {
  const asked = Math.ceil((failure.retryAfterMs ?? 0) / 1000);
  return `asked to wait ${asked} s (Retry-After), longer than llm.retry.maxRetryAfterSeconds (${maxRetryAfterSeconds} s): not waited for`;
}

/** Availability failures let the chain move on to the next provider; others end the call. */
function isAvailabilityFailure(failure: ClassifiedFailure, error: unknown): boolean {
  return (
    error instanceof CircuitOpenError ||
    ['rate_limited', 'server', 'network', 'timeout'].includes(failure.kind)
  );
}

/** What a call to one provider goes through: its circuit breaker and its bulkhead. */
interface Guards {
  breaker: CircuitBreaker;
  bulkhead: Bulkhead;
}

/** Creates the client; providers, breakers and bulkheads live as long as it does (one per process). */
export function createLlmClient(options: LlmClientOptions): LlmClient {
  const { providers, llm } = options;
  const getModel = options.getModel ?? createModelCache(providers);
  const providerBreakerFor = createCircuitBreakerSet({
    failureThreshold: llm.circuitBreaker.failureThreshold,
    openMs: llm.circuitBreaker.openSeconds * 1000,
    now: options.now,
    onStateChange: (provider, state) => options.telemetry?.circuitStateChanged?.(provider, state),
  });
  // Breakers of tenants' own credentials, by tenant and provider. Not in the circuit-state gauge,
  // which shows the operator's providers.
  const tenantBreakerFor = createCircuitBreakerSet({
    failureThreshold: llm.circuitBreaker.failureThreshold,
    openMs: llm.circuitBreaker.openSeconds * 1000,
    now: options.now,
  });
  const bulkheads = new Map<string, Bulkhead>();
  const providerNames = Object.keys(providers);
  // Each configured provider starts closed: its circuit-state series exists from the first scrape,
  // so a dashboard or alert sees `closed` instead of no data until a breaker first trips.
  for (const name of providerNames) options.telemetry?.circuitStateChanged?.(name, 'closed');
  const retryPolicy = {
    maxAttempts: llm.retry.maxAttempts,
    baseDelayMs: llm.retry.baseDelayMs,
    maxDelayMs: llm.retry.maxDelayMs,
    maxRetryAfterMs: llm.retry.maxRetryAfterSeconds * 1000,
  };

  /** The provider's bulkhead, or the one of a tenant's own server for the provider (`tenant`). */
  function bulkheadFor(name: string, tenant?: string): Bulkhead {
    const key = tenant === undefined ? name : `${tenant}\u0000${name}`;
    let bulkhead = bulkheads.get(key);
    if (!bulkhead) {
      bulkhead = createBulkhead(providers[name]?.maxConcurrency ?? 16);
      bulkheads.set(key, bulkhead);
    }
    return bulkhead;
  }

  function targetFor(
    providerName: string,
    model: string | undefined,
    temperature: number | undefined,
  ): CallTarget {
    const provider = providers[providerName];
    if (!provider) {
      throw new AppError(
        'CONFIG_INVALID',
        `LLM route names provider '${providerName}', which is not configured`,
      );
    }
    const modelId = model ?? provider.model;
    return {
      provider: providerName,
      model: modelId,
      temperature,
      maxOutputTokens: provider.maxOutputTokens,
      price: priceOf(llm.prices, modelId),
    };
  }

  function resolveChain(role: string): CallTarget[] {
    // Own keys only: a tenant's custom role may be named `constructor` (Object.prototype's member).
    const route = Object.hasOwn(llm.roles, role) ? llm.roles[role] : undefined;
    const primary = route?.provider ?? llm.defaultProvider ?? providerNames[0];
    if (primary === undefined) {
      throw new AppError(
        'VALIDATION_FAILED',
        'No LLM provider is configured: add one under `providers` in the server config',
      );
    }
    const fallback = route ? route.fallback : llm.defaultFallback;
    const chain = [targetFor(primary, route?.model, route?.temperature)];
    // A provider named twice (the primary among the fallbacks, a fallback listed again) is tried
    // once: another round of retries against a provider that just failed them would only wait.
    for (const name of new Set(fallback)) {
      if (name !== primary) chain.push(targetFor(name, undefined, route?.temperature));
    }
    return chain;
  }

  /**
   * The breaker and bulkhead of a call to `provider`: the operator's, or, with the calling tenant's
   * own credential, that tenant's breaker (and bulkhead, for its own server).
   */
  function guardsFor(provider: string, credential: TenantCredentialUse | undefined): Guards {
    if (credential === undefined)
      return { breaker: providerBreakerFor(provider), bulkhead: bulkheadFor(provider) };
    return {
      breaker: tenantBreakerFor(`${credential.tenantId}\u0000${provider}`),
      bulkhead: bulkheadFor(provider, credential.ownBaseURL ? credential.tenantId : undefined),
    };
  }

  async function attemptOnce<T>(
    target: CallTarget,
    { breaker, bulkhead }: Guards,
    lookup: CredentialLookup | undefined,
    signal: AbortSignal,
    attempt: number,
    run: (ctx: AttemptContext) => Promise<T>,
  ): Promise<T> {
    const permit = breaker.tryAcquire();
    if (!permit) {
      options.telemetry?.circuitRejected?.(target.provider);
      throw new CircuitOpenError(target.provider);
    }
    let release: () => void;
    try {
      release = await bulkhead.acquire(signal);
    } catch (error) {
      // Stopped while waiting for a slot: a half-open trial that never ran must not hold the
      // circuit's only trial slot for good.
      breaker.releaseTrial(permit);
      throw error;
    }
    // Each at most ~24.8 days (config/timer-limits.ts): a longer timer would fire at once.
    const limits = providers[target.provider];
    const startSeconds = limits?.timeoutSeconds ?? 300;
    const timer = startCallTimer({
      startMs: startSeconds * 1000,
      idleMs: (limits?.idleTimeoutSeconds ?? startSeconds) * 1000,
      totalMs: (limits?.maxCallSeconds ?? Math.max(DEFAULT_MAX_CALL_SECONDS, startSeconds)) * 1000,
    });
    const callSignal = AbortSignal.any([signal, timer.signal]);
    const tally: ModelCallTally = { fromCache: 0, toProvider: 0 };
    // What the run streams from now until this attempt ends is spent on this model.
    startModelAttempt(target);
    try {
      // The responses its model calls fetch tell the timer when each chunk came (call-timer.ts).
      // What it throws leaves it without the secrets of the models it called, before the telemetry
      // or anything else here records it: an error a provider reported inside a streamed answer
      // (provider-error-redaction.ts).
      const runAttempt = () =>
        runWithCallTimer(timer, () =>
          countModelCalls(tally, () =>
            runRedactingStreamErrors(() =>
              run({
                model: getModel(target.provider, target.model, lookup),
                target,
                signal: callSignal,
                attempt,
                nextCall: timer.startCall,
                betweenCalls: timer.pause,
              }),
            ),
          ),
        );
      const value = options.telemetry
        ? await options.telemetry.observeCall(
            {
              provider: target.provider,
              model: target.model,
              serverAddress: serverAddressOf(providers[target.provider]?.baseURL),
              serverPort: serverPortOf(providers[target.provider]?.baseURL),
              maxTokens: target.maxOutputTokens,
              temperature: target.temperature,
              signal,
            },
            runAttempt,
            usageOf,
          )
        : await runAttempt();
      // The run's spend on this provider and model (the value's usage is what the caller charges).
      recordModelSpend(target, usageOf(value));
      // Answered from the response cache only: nothing was learnt about the provider, so neither
      // its count of consecutive failures is reset nor a half-open circuit closed.
      if (tally.fromCache > 0 && tally.toProvider === 0) breaker.releaseTrial(permit);
      else breaker.recordSuccess(permit);
      return value;
    } catch (error) {
      if (signal.aborted) {
        breaker.releaseTrial(permit);
        throw error;
      }
      if (timer.signal.aborted) {
        breaker.recordFailure(permit);
        throw timer.signal.reason;
      }
      if (classifyProviderError(error).retryable) breaker.recordFailure(permit);
      else breaker.releaseTrial(permit);
      throw error;
    } finally {
      timer.stop();
      release();
    }
  }

  return {
    hasProviders: () => providerNames.length > 0,
    resolveChain,
    async call(role, signal, run) {
      const chain = resolveChain(role);
      const failures: string[] = [];
      let attempts = 0;
      let last: { failure: ClassifiedFailure; error: unknown; site: FailureSite } | undefined;
      for (const target of chain) {
        // Whose credential an attempt uses decides its breaker and bulkhead, and what an error tells
        // to check; read once per attempt, its model's first request uses the same read.
        let credential: TenantCredentialUse | undefined;
        const outcome = await callWithRetry(
          retryPolicy,
          signal,
          async () => {
            attempts += 1;
            const attempt = attempts;
            const lookup = await options.tenantCredential?.(target.provider);
            credential = lookup?.use;
            return attemptOnce(target, guardsFor(target.provider, credential), lookup, signal, attempt, run);
          },
          {
            sleep: options.sleep,
            onRetry: ({ attempt, delayMs, failure }) =>
              options.logger?.warn(
                {
                  provider: target.provider,
                  model: target.model,
                  attempt,
                  delayMs,
                  status: failure.status,
                  kind: failure.kind,
                },
                'LLM call failed; retrying',
              ),
          },
        );
        if (outcome.ok) return { value: outcome.value, target, attempts };
        const failure =
          outcome.error instanceof CircuitOpenError
            ? { ...outcome.failure, kind: 'server' as const, detail: 'circuit breaker open' }
            : outcome.retryAfterTooLong
              ? // Why it was not retried, in the provider's entry of the message: else a fallback's
                // failure reads as if the primary had been given up after its retries.
                {
                  ...outcome.failure,
                  detail: `${outcome.failure.detail}; ${waitNotTaken(outcome.failure, llm.retry.maxRetryAfterSeconds)}`,
                }
              : outcome.failure;
        const site = { ...target, attempts: outcome.attempts, tenantCredential: credential };
        last = { failure, error: outcome.error, site };
        if (!isAvailabilityFailure(outcome.failure, outcome.error)) {
          const error = toProviderAppError(failure, site, outcome.error);
          if (failures.length === 0) throw error;
          // A fallback that fails for good: the providers tried before it are named too, or the
          // error would show only a provider the role does not normally use.
          throw new AppError(
            error.code,
            `All providers for role '${role}' failed: ${failures.join('; ')}; then ${error.message}`,
            {
              details: { role, failures: [...failures, `${target.provider}: ${failure.detail}`] },
              cause: outcome.error,
            },
          );
        }
        failures.push(`${target.provider}: ${failure.detail}`);
        options.logger?.warn(
          {
            provider: target.provider,
            model: target.model,
            kind: failure.kind,
            // The wait it asked for, when that is why it was not retried.
            ...(outcome.retryAfterTooLong ? { retryAfterMs: outcome.failure.retryAfterMs } : {}),
          },
          'LLM provider unavailable; trying the next in the chain',
        );
      }
      if (!last) throw new AppError('INTERNAL', 'empty provider chain');
      const error = toProviderAppError(last.failure, last.site, last.error);
      if (chain.length === 1) throw error;
      throw new AppError(error.code, `All providers for role '${role}' failed: ${failures.join('; ')}`, {
        details: { role, failures },
        cause: last.error,
      });
    },
  };
}
