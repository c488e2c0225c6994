// Telemetry of each model call of one LLM agent attempt: a `chat {model}` span (child of the agent
// span, when it records) and one duration sample and one pair of token samples per call, as the
// GenAI conventions define the inference operation, rather than one for the attempt's whole tool loop.
// A call the response cache answered is a span that says so, without samples: no provider was called.
import type { Context, Span } from '@opentelemetry/api';
import type { GenAiTracer } from './genai-spans.ts';
import type { Metrics } from './metrics.ts';
import { markSpanFailed } from './tracing.ts';

/**
 * Span attribute of a model call the response cache was asked for: true when the answer came from
 * the cache (no provider call), false when the provider was called. MAOS's own: GenAI defines none.
 */
export const RESPONSE_CACHE_HIT = 'maos.llm.response_cache.hit';

/** Token counts of one model call, as its provider reported them. */
export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
}

/** What the model calls of an attempt are made against (the LLM client's attempt target). */
export interface ModelCallTarget {
  provider: string;
  model: string;
  operation?: 'chat' | 'text_completion' | 'generate_content';
  serverAddress?: string;
  serverPort?: number;
  maxTokens?: number;
  temperature?: number;
  /**
   * The caller's signal (cancel, budget stop, lease lost, shutdown), without the per-call timeout:
   * a call it stopped is `cancelled`, whatever it was stopped with, not a provider failure.
   */
  signal?: AbortSignal;
}

/** The error type of a failed call: `cancelled` when its caller stopped it, else as classified. */
export function errorTypeOf(
  target: ModelCallTarget,
  error: unknown,
  classify: (error: unknown) => string,
): string {
  return target.signal?.aborted ? 'cancelled' : classify(error);
}

/**
 * The model calls of one attempt; they run one after the other, so the call in progress is kept
 * here (start time, span) and nothing is allocated per call beyond the metric samples.
 */
export interface ModelCallTelemetry {
  callStarted(step: number): void;
  /**
   * The call answered. `refusal`: its answer fails the attempt (refused with no text): the span keeps
   * the finish reason and usage but is failed with the error type, which the duration sample carries.
   */
  callFinished(
    usage: TokenUsage | undefined,
    finishReason: string | undefined,
    responseModel: string | undefined,
    responseId: string | undefined,
    refusal?: unknown,
  ): void;
  callFailed(error: unknown): void;
  /** The model refused the tools offered (the attempt retries without them): span only, no samples. */
  callRefusedTools(error: unknown): void;
  /**
   * The response cache was asked for the call in progress: on a hit the call is no provider call,
   * and records no duration, token, cost or error sample.
   */
  cacheLookedUp(hit: boolean): void;
  /** Whether the last model call failed: the attempt's failure is then already recorded. */
  readonly lastCallFailed: boolean;
}

export interface ModelCallDeps {
  metrics: Metrics;
  genAi: GenAiTracer;
  classify(error: unknown): string;
  now(): number;
}

export interface AttemptOfCalls {
  target: ModelCallTarget;
  /** 1-based attempt number of the LLM client (on the spans as `maos.llm.attempt`). */
  attempt: number;
  /** Cost of a call's tokens at the attempt's price (0 when unpriced). */
  costOf(tokens: TokenUsage): number;
  /** The agent span's context: chat spans are its children. Undefined: no spans (not traced). */
  parent: Context | undefined;
}

/**
 * The telemetry of one attempt's model calls. A class, so that the one object made per attempt
 * carries no closures (this runs on every agent step).
 */
export class AttemptModelCalls implements ModelCallTelemetry {
  lastCallFailed = false;
  #deps: ModelCallDeps;
  #of: AttemptOfCalls;
  #operation: 'chat' | 'text_completion' | 'generate_content';
  #started = 0;
  #span: Span | undefined;
  /** The call in progress was answered from the response cache. */
  #fromCache = false;

  constructor(deps: ModelCallDeps, of: AttemptOfCalls) {
    this.#deps = deps;
    this.#of = of;
    this.#operation = of.target.operation ?? 'chat';
  }

  callStarted(step: number): void {
    this.lastCallFailed = false;
    this.#fromCache = false;
    this.#started = this.#deps.now();
    const { target, parent } = this.#of;
    if (parent === undefined) return;
    this.#span = this.#deps.genAi.startChat(
      {
        provider: target.provider,
        model: target.model,
        operation: this.#operation,
        serverAddress: target.serverAddress,
        serverPort: target.serverPort,
        maxTokens: target.maxTokens,
        temperature: target.temperature,
        attempt: this.#of.attempt,
        step,
      },
      parent,
    );
  }

  callFinished(
    usage: TokenUsage | undefined,
    finishReason: string | undefined,
    responseModel: string | undefined,
    responseId: string | undefined,
    refusal?: unknown,
  ): void {
    const durationSeconds = (this.#deps.now() - this.#started) / 1000;
    const errorType =
      refusal === undefined ? undefined : errorTypeOf(this.#of.target, refusal, this.#deps.classify);
    this.lastCallFailed = errorType !== undefined;
    const span = this.#span;
    if (span) {
      this.#span = undefined;
      this.#deps.genAi.endChat(span, {
        responseModel,
        responseId,
        finishReasons: finishReason === undefined ? undefined : [finishReason],
        inputTokens: usage?.inputTokens,
        outputTokens: usage?.outputTokens,
        cacheReadTokens: usage?.cacheReadTokens,
      });
      if (errorType !== undefined) {
        markSpanFailed(span, refusal);
        span.setAttribute('error.type', errorType);
      }
      span.end();
    }
    if (this.#fromCache) return;
    this.#record({
      durationSeconds,
      inputTokens: usage?.inputTokens,
      outputTokens: usage?.outputTokens,
      costUsd: usage ? this.#of.costOf(usage) : undefined,
      errorType,
    });
  }

  callFailed(error: unknown): void {
    const durationSeconds = (this.#deps.now() - this.#started) / 1000;
    const errorType = errorTypeOf(this.#of.target, error, this.#deps.classify);
    this.lastCallFailed = true;
    const span = this.#span;
    if (span) {
      this.#span = undefined;
      markSpanFailed(span, error);
      span.setAttribute('error.type', errorType);
      span.end();
    }
    if (!this.#fromCache) this.#record({ durationSeconds, errorType });
  }

  callRefusedTools(error: unknown): void {
    this.lastCallFailed = false;
    const span = this.#span;
    if (!span) return;
    this.#span = undefined;
    markSpanFailed(span, error);
    span.setAttribute('error.type', 'tools_unsupported');
    span.end();
  }

  cacheLookedUp(hit: boolean): void {
    this.#fromCache = hit;
    this.#span?.setAttribute(RESPONSE_CACHE_HIT, hit);
  }

  /** One model call's metric samples, labelled with the attempt's provider, model and operation. */
  #record(call: Omit<Parameters<Metrics['recordLlmCall']>[0], 'provider' | 'model' | 'operation'>): void {
    const { target } = this.#of;
    this.#deps.metrics.recordLlmCall({
      provider: target.provider,
      model: target.model,
      operation: this.#operation,
      ...call,
    });
  }
}
