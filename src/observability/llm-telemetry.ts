// One place where a model call becomes telemetry: a `chat {model}` span, the GenAI duration and
// token histograms, the cost counter and provider errors by type. The LLM client calls it per attempt.
import { context, type Span, trace } from '@opentelemetry/api';
import { classifyProviderError } from '../agents/providers/provider-errors.ts';
import type { GenAiTracer } from './genai-spans.ts';
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

export interface CallTarget {
  provider: string;
  model: string;
  operation?: 'chat' | 'text_completion' | 'generate_content';
  serverAddress?: string;
  maxTokens?: number;
  temperature?: number;
}

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
   * Runs one model call attempt inside a `chat {model}` span and records its duration, tokens, cost
   * and, when it throws, its error type. Returns (or rethrows) what `run` does.
   */
  observeCall<T>(
    target: CallTarget,
    run: (span: Span) => Promise<T>,
    usageOf: (value: T) => CallUsage,
  ): Promise<T>;
  circuitStateChanged(provider: string, state: CircuitState): void;
  /** A call its provider's open circuit breaker refused before it started (no span, no duration). */
  circuitRejected(provider: string): void;
  cacheLookup(provider: string, hit: boolean): void;
  /**
   * The agent span active now (the task's `invoke_agent`), for the runtime to name its model and
   * trace its tool calls; undefined when no span is recording (tracing off), so nothing is wrapped.
   */
  agentScope(): AgentTelemetryScope | undefined;
}

/** Telemetry bound to one agent span; see LlmTelemetry.agentScope. */
export interface AgentTelemetryScope {
  /** Names the provider and model that served the agent (known only after the call). */
  setModel(provider: string, model: string): void;
  /**
   * Runs one tool call in an `execute_tool {name}` span, child of the agent span (a sibling of the
   * `chat` spans). Arguments and result are recorded only when content capture is opted in.
   */
  traceTool<T>(tool: { name: string; callId?: string; input?: unknown }, run: () => Promise<T>): Promise<T>;
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

/** Creates the adapter between the LLM client and metrics/tracing. */
export function createLlmTelemetry(options: LlmTelemetryOptions): LlmTelemetry {
  const { metrics, genAi } = options;
  const classify = options.classifyError ?? defaultClassify;
  const now = options.now ?? (() => performance.now());
  return {
    async observeCall<T>(
      target: CallTarget,
      run: (span: Span) => Promise<T>,
      usageOf: (value: T) => CallUsage,
    ): Promise<T> {
      const operation = target.operation ?? 'chat';
      const span = genAi.startChat({
        provider: target.provider,
        model: target.model,
        operation,
        serverAddress: target.serverAddress,
        maxTokens: target.maxTokens,
        temperature: target.temperature,
      });
      const started = now();
      const base = { provider: target.provider, model: target.model, operation };
      let value: T;
      try {
        value = await context.with(trace.setSpan(context.active(), span), () => run(span));
      } catch (error) {
        const errorType = classify(error);
        metrics.recordLlmCall({ ...base, durationSeconds: (now() - started) / 1000, errorType });
        markSpanFailed(span, error);
        span.setAttribute('error.type', errorType);
        span.end();
        throw error;
      }
      const usage = usageOf(value);
      genAi.endChat(span, usage);
      span.end();
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
    cacheLookup: (provider, hit) => metrics.recordCacheResult(provider, hit),
    agentScope: () => createAgentScope(genAi),
  };
}

function createAgentScope(genAi: GenAiTracer): AgentTelemetryScope | undefined {
  const parent = context.active();
  const agent = trace.getSpan(parent);
  if (!agent?.isRecording()) return undefined;
  return {
    setModel(provider, model) {
      agent.setAttributes({ 'gen_ai.provider.name': provider, 'gen_ai.request.model': model });
    },
    async traceTool(tool, run) {
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
    },
  };
}
