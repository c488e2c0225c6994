// One place where a model call becomes telemetry: a `chat {model}` span, the GenAI duration and
// token histograms, the cost counter and provider errors by type. The LLM client calls it per
// attempt; an LLM agent takes its attempts over, so that each model call of its tool loop is one
// span and one sample (llm-telemetry-model-calls.ts). A call answered from the response cache is
// no provider call: a cache hit on its span and counter, no duration, token or error sample.
import { AsyncLocalStorage } from 'node:async_hooks';
import { type Context, context, type Span, trace } from '@opentelemetry/api';
import { classifyProviderError } from '../agents/providers/provider-errors.ts';
import type { GenAiTracer } from './genai-spans.ts';
import {
  AttemptModelCalls,
  errorTypeOf,
  type ModelCallDeps,
  type ModelCallTarget,
  type ModelCallTelemetry,
  RESPONSE_CACHE_HIT,
  type TokenUsage,
} from './llm-telemetry-model-calls.ts';
import { OTHER, type PROVIDER_ERROR_TYPES } from './metric-labels.ts';
import type { CircuitState, Metrics } from './metrics.ts';
import { markSpanFailed } from './tracing.ts';

/** What a finished call reports; all optional because providers differ in what they return. */
export interface CallUsage {
  inputTokens?: number;
  outputTokens?: number;
  cacheReadTokens?: number;
  costUsd?: number;
  responseModel?: string;
  finishReasons?: string[];
}

/** What a call is made against (provider, model, request settings): one type for calls and model calls. */
export type CallTarget = ModelCallTarget;

export interface LlmTelemetryOptions {
  metrics: Metrics;
  genAi: GenAiTracer;
  /**
   * Maps a thrown error to a provider error type; the default classifies provider failures (HTTP
   * status, timeout, network) like the retry loop does, then AppError codes and error names.
   */
  classifyError?: (error: unknown) => string;
  now?: () => number;
}

export interface LlmTelemetry {
  /**
   * Runs one model call attempt, records its duration, tokens, cost and, when it throws, its error
   * type, in a `chat {model}` span. Returns (or rethrows) what `run` does. An attempt an agent
   * claims (AgentTelemetryScope.claimAttempt) records its model calls instead, each on its own.
   */
  observeCall<T>(target: CallTarget, run: () => Promise<T>, usageOf: (value: T) => CallUsage): Promise<T>;
  circuitStateChanged(provider: string, state: CircuitState): void;
  /** A call its provider's open circuit breaker refused before it started (no span, no duration). */
  circuitRejected(provider: string): void;
  /**
   * A response cache lookup (maos_llm_cache_requests_total). Inside an observed attempt it also
   * marks the model call in progress: a hit then records no provider sample (see observeCall).
   */
  cacheLookup(provider: string, hit: boolean): void;
  /** A cache read that failed (the call went to the provider): `result="error"`. */
  cacheReadFailed(provider: string): void;
  /**
   * The telemetry of the agent run starting now. Bound to the active span (the task's
   * `invoke_agent`) when it records: chat and tool spans become its children. Otherwise (tracing
   * off) metrics only, and the same object every time.
   */
  agentScope(): AgentTelemetryScope;
}

/** Telemetry of one agent run; see LlmTelemetry.agentScope. */
export interface AgentTelemetryScope {
  /** Names the provider and model that served the agent (known only after the call). */
  setModel(provider: string, model: string): void;
  /**
   * Runs one tool call in an `execute_tool {name}` span, child of the agent span (a sibling of the
   * `chat` spans). Arguments and result are recorded only when content capture is opted in.
   * Absent when the agent span does not record.
   */
  traceTool?<T>(tool: { name: string; callId?: string; input?: unknown }, run: () => Promise<T>): Promise<T>;
  /**
   * Takes over the attempt `observeCall` is starting right now: it then records no span or sample
   * of its own, and the returned telemetry records each model call. Only during the synchronous
   * start of `run` (see observeCall); undefined otherwise.
   */
  claimAttempt(attempt: number, costOf: (tokens: TokenUsage) => number): ModelCallTelemetry | undefined;
}

/** Failure kinds of the provider layer (and AppError codes) mapped to the provider error types. */
const ERROR_TYPE_BY_KIND: Record<string, (typeof PROVIDER_ERROR_TYPES)[number]> = {
  auth: 'authentication',
  bad_request: 'bad_request',
  not_found: 'bad_request',
  rate_limited: 'rate_limited',
  server: 'server_error',
  network: 'network',
  timeout: 'timeout',
  circuit_open: 'circuit_open',
  cancelled: 'cancelled',
  content_filter: 'content_filter',
  TIMEOUT: 'timeout',
  RATE_LIMITED: 'rate_limited',
  PROVIDER_UNAVAILABLE: 'server_error',
  PROVIDER_ERROR: 'server_error',
  // A refusal or content filter with no text (agents/runtimes/ai-sdk/finish-reason.ts); the attempt
  // sees it before the LLM client wraps it in PROVIDER_ERROR.
  PROVIDER_REFUSED: 'content_filter',
  AbortError: 'cancelled',
  TimeoutError: 'timeout',
  ProviderTimeoutError: 'timeout',
  CircuitOpenError: 'circuit_open',
};

/** Maps a failure kind, AppError code or error name to a provider error type (`_OTHER` if unknown). */
export function toProviderErrorType(kindOrCode: string): string {
  return ERROR_TYPE_BY_KIND[kindOrCode] ?? OTHER;
}

/**
 * The provider layer's own classification first: the AI SDK's HTTP errors (APICallError) carry a
 * status code, not a `code`, so a 500 would otherwise count as `_OTHER`. What it cannot place
 * (kind `other`: AppErrors, aborts, our circuit breaker) is mapped by code, then by name.
 */
function defaultClassify(error: unknown): string {
  const { kind } = classifyProviderError(error);
  if (kind !== 'other') return toProviderErrorType(kind);
  if (typeof error === 'object' && error !== null) {
    const { code, name } = error as { code?: unknown; name?: unknown };
    if (typeof code === 'string' && ERROR_TYPE_BY_KIND[code]) return toProviderErrorType(code);
    if (typeof name === 'string') return toProviderErrorType(name);
  }
  return OTHER;
}

/**
 * Where the response cache's lookups of one attempt go: to the model call in progress of an
 * attempt an agent claimed, or else to the attempt itself (one model call).
 */
interface CacheLookups {
  calls: ModelCallTelemetry | undefined;
  /** The attempt's lookup result, when unclaimed; undefined when the cache was not consulted. */
  hit: boolean | undefined;
}

/** Creates the adapter between the LLM client and metrics/tracing. */
export function createLlmTelemetry(options: LlmTelemetryOptions): LlmTelemetry {
  const { metrics, genAi } = options;
  const classify = options.classifyError ?? defaultClassify;
  const now = options.now ?? (() => performance.now());
  const deps: ModelCallDeps = { metrics, genAi, classify, now };
  // The response cache sits below the LLM client, inside the model (providers/response-cache-model.ts),
  // and reports only (provider, hit). The attempt's async context tells which call it was for;
  // attempts run concurrently, so nothing shared can.
  const lookups = new AsyncLocalStorage<CacheLookups>();
  // The hand-over of an attempt to the agent that runs it. The LLM client calls `run` (the agent's
  // attempt callback) synchronously inside observeCall, and the agent claims the attempt before its
  // first await, so `offered` is only set while that call is on the stack: concurrent attempts
  // cannot see each other's. No context or AsyncLocalStorage needed, which tracing-off lacks.
  let offered: CallTarget | undefined;
  let claimed: ModelCallTelemetry | undefined;

  function claim(
    attempt: number,
    costOf: (tokens: TokenUsage) => number,
    parent: Context | undefined,
  ): ModelCallTelemetry | undefined {
    if (offered === undefined) return undefined;
    claimed = new AttemptModelCalls(deps, { target: offered, attempt, costOf, parent });
    offered = undefined;
    const sink = lookups.getStore();
    if (sink) sink.calls = claimed;
    return claimed;
  }
  const untracedScope: AgentTelemetryScope = {
    setModel() {},
    claimAttempt: (attempt, costOf) => claim(attempt, costOf, undefined),
  };

  return {
    async observeCall<T>(
      target: CallTarget,
      run: () => Promise<T>,
      usageOf: (value: T) => CallUsage,
    ): Promise<T> {
      const started = now();
      let running: Promise<T>;
      const sink: CacheLookups = { calls: undefined, hit: undefined };
      offered = target;
      claimed = undefined;
      try {
        running = lookups.run(sink, run);
      } catch (error) {
        running = Promise.reject(error);
      } finally {
        offered = undefined;
      }
      // Set by `claim` while `run` was starting (TypeScript cannot see that assignment).
      const calls = claimed as ModelCallTelemetry | undefined;
      claimed = undefined;
      if (calls) {
        // Claimed by the agent: each model call recorded itself.
        try {
          return await running;
        } catch (error) {
          // Failed outside a model call (e.g. its timeout hit during a tool run): still a failed
          // attempt for the provider error counter, without a duration sample (no call to time).
          if (!calls.lastCallFailed) {
            metrics.recordProviderError(target.provider, errorTypeOf(target, error, classify));
          }
          throw error;
        }
      }
      // One model call (planning, synthesis): the attempt is the call. Its span starts once `run`
      // has started (a few microseconds later), as only then is it known not to be claimed.
      const operation = target.operation ?? 'chat';
      const span = genAi.startChat({
        provider: target.provider,
        model: target.model,
        operation,
        serverAddress: target.serverAddress,
        serverPort: target.serverPort,
        maxTokens: target.maxTokens,
        temperature: target.temperature,
      });
      const base = { provider: target.provider, model: target.model, operation };
      let value: T;
      try {
        value = await running;
      } catch (error) {
        const errorType = errorTypeOf(target, error, classify);
        if (sink.hit !== true) {
          metrics.recordLlmCall({ ...base, durationSeconds: (now() - started) / 1000, errorType });
        }
        markCacheResult(span, sink.hit);
        markSpanFailed(span, error);
        span.setAttribute('error.type', errorType);
        span.end();
        throw error;
      }
      const usage = usageOf(value);
      markCacheResult(span, sink.hit);
      genAi.endChat(span, usage);
      span.end();
      // Served from the cache: not a call of the provider, so none of its samples.
      if (sink.hit === true) return value;
      metrics.recordLlmCall({
        ...base,
        durationSeconds: (now() - started) / 1000,
        inputTokens: usage.inputTokens,
        outputTokens: usage.outputTokens,
        costUsd: usage.costUsd,
      });
      return value;
    },
    circuitStateChanged: (provider, state) => metrics.setCircuitState(provider, state),
    circuitRejected: (provider) => metrics.recordProviderError(provider, 'circuit_open'),
    cacheReadFailed: (provider) => metrics.recordCacheResult(provider, 'error'),
    cacheLookup(provider, hit) {
      metrics.recordCacheResult(provider, hit ? 'hit' : 'miss');
      const sink = lookups.getStore();
      if (sink === undefined) return;
      if (sink.calls) sink.calls.cacheLookedUp(hit);
      else sink.hit = hit;
    },
    agentScope() {
      const parent = context.active();
      const agent = trace.getSpan(parent);
      if (!agent?.isRecording()) return untracedScope;
      return {
        setModel(provider, model) {
          agent.setAttributes({ 'gen_ai.provider.name': provider, 'gen_ai.request.model': model });
        },
        traceTool: (tool, run) => traceTool(genAi, parent, tool, run),
        claimAttempt: (attempt, costOf) => claim(attempt, costOf, parent),
      };
    },
  };
}

/** Says on a chat span whether its answer came from the response cache (absent: not consulted). */
function markCacheResult(span: Span, hit: boolean | undefined): void {
  if (hit !== undefined) span.setAttribute(RESPONSE_CACHE_HIT, hit);
}

async function traceTool<T>(
  genAi: GenAiTracer,
  parent: Context,
  tool: { name: string; callId?: string; input?: unknown },
  run: () => Promise<T>,
): Promise<T> {
  const span = genAi.startTool(
    { toolName: tool.name, toolCallId: tool.callId, arguments: tool.input },
    parent,
  );
  try {
    const output = await context.with(trace.setSpan(parent, span), run);
    genAi.endTool(span, { output });
    return output;
  } catch (error) {
    markSpanFailed(span, error);
    throw error;
  } finally {
    span.end();
  }
}
