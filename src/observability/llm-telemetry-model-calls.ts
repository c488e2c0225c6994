// Telemetry of each model call of one LLM agent attempt: a `chat {model}` span (child of the agent
// span, when it records) and one duration sample and one pair of token samples per call, as the
// GenAI conventions define the inference operation, rather than one for the attempt's whole tool loop.
import type { Context, Span } from '@opentelemetry/api';
import type { GenAiTracer } from './genai-spans.ts';
import type { Metrics } from './metrics.ts';
import { markSpanFailed } from './tracing.ts';

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
  maxTokens?: number;
  temperature?: number;
}

/**
 * The model calls of one attempt; they run one after the other, so the call in progress is kept
 * here (start time, span) and nothing is allocated per call beyond the metric samples.
 */
export interface ModelCallTelemetry {
  callStarted(step: number): void;
  callFinished(
    usage: TokenUsage | undefined,
    finishReason: string | undefined,
    responseModel: string | undefined,
    responseId: string | undefined,
  ): void;
  callFailed(error: unknown): void;
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

/** Creates the telemetry of one attempt's model calls. */
export function createModelCallTelemetry(deps: ModelCallDeps, of: AttemptOfCalls): ModelCallTelemetry {
  const { metrics, genAi, classify, now } = deps;
  const { target, parent } = of;
  const operation = target.operation ?? 'chat';
  let started = 0;
  let span: Span | undefined;
  let lastCallFailed = false;
  const seconds = () => (now() - started) / 1000;
  return {
    get lastCallFailed() {
      return lastCallFailed;
    },
    callStarted(step) {
      lastCallFailed = false;
      started = now();
      if (parent === undefined) return;
      span = genAi.startChat(
        {
          provider: target.provider,
          model: target.model,
          operation,
          serverAddress: target.serverAddress,
          maxTokens: target.maxTokens,
          temperature: target.temperature,
          attempt: of.attempt,
          step,
        },
        parent,
      );
    },
    callFinished(usage, finishReason, responseModel, responseId) {
      const durationSeconds = seconds();
      if (span) {
        genAi.endChat(span, {
          responseModel,
          responseId,
          finishReasons: finishReason === undefined ? undefined : [finishReason],
          inputTokens: usage?.inputTokens,
          outputTokens: usage?.outputTokens,
          cacheReadTokens: usage?.cacheReadTokens,
        });
        span.end();
        span = undefined;
      }
      metrics.recordLlmCall({
        provider: target.provider,
        model: target.model,
        operation,
        durationSeconds,
        inputTokens: usage?.inputTokens,
        outputTokens: usage?.outputTokens,
        costUsd: usage ? of.costOf(usage) : undefined,
      });
    },
    callFailed(error) {
      const durationSeconds = seconds();
      const errorType = classify(error);
      lastCallFailed = true;
      if (span) {
        markSpanFailed(span, error);
        span.setAttribute('error.type', errorType);
        span.end();
        span = undefined;
      }
      metrics.recordLlmCall({
        provider: target.provider,
        model: target.model,
        operation,
        durationSeconds,
        errorType,
      });
    },
  };
}
