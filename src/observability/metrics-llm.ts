// The GenAI and LLM-provider metrics (OTel GenAI client histograms, spend, provider errors, circuit
// state, response cache) and their recorders; part of the one registry createMetrics builds.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { type CACHE_RESULTS, CIRCUIT_STATES, type LabelsOf, type MetricName } from './metric-labels.ts';

export type CircuitState = (typeof CIRCUIT_STATES)[number];

/** gen_ai.client.token.usage buckets prescribed by the GenAI semantic conventions. */
const TOKEN_BUCKETS = [
  1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
];
/** gen_ai.client.operation.duration buckets prescribed by the GenAI semantic conventions: 0.01 doubling to 81.92. */
const GEN_AI_DURATION_BUCKETS = Array.from({ length: 14 }, (_, i) => Number((0.01 * 2 ** i).toFixed(2)));

/** One model call as the LLM telemetry reports it. */
export interface LlmCallRecord {
  provider: string;
  model: string;
  /** GenAI operation, usually `chat`. */
  operation: string;
  durationSeconds: number;
  inputTokens?: number;
  outputTokens?: number;
  costUsd?: number;
  /** Set on failure: one of PROVIDER_ERROR_TYPES (others count as `_OTHER`). */
  errorType?: string;
}

/** The LLM recorders of the metrics facade. */
export interface LlmMetrics {
  recordLlmCall(call: LlmCallRecord): void;
  recordProviderError(provider: string, errorType: string): void;
  setCircuitState(provider: string, state: CircuitState): void;
  recordCacheResult(provider: string, result: (typeof CACHE_RESULTS)[number]): void;
}

/** What createMetrics lends a group of metrics: its registry and its label-bounding helpers. */
export interface MetricTools {
  registers: Registry[];
  labels<M extends MetricName>(
    metric: M,
    raw: Partial<Record<LabelsOf<M>, string>>,
  ): Record<string, string> | undefined;
  names<M extends MetricName>(metric: M, ...labelNames: Array<LabelsOf<M>>): string[];
  inc(counter: Counter<string>, set: Record<string, string> | undefined, by?: number): void;
  observe(histogram: Histogram<string>, set: Record<string, string> | undefined, value: number): void;
}

/** Defines the LLM metrics in the tools' registry and returns their recorders. */
export function defineLlmMetrics(tools: MetricTools): LlmMetrics {
  const { registers, labels, names, inc, observe } = tools;
  const tokenUsage = new Histogram({
    name: 'gen_ai_client_token_usage',
    help: 'Billable tokens per GenAI operation a provider answered, by token type (gen_ai.client.token.usage); response cache answers are not samples.',
    labelNames: names(
      'gen_ai_client_token_usage',
      'gen_ai_operation_name',
      'gen_ai_provider_name',
      'gen_ai_request_model',
      'gen_ai_token_type',
    ),
    buckets: TOKEN_BUCKETS,
    registers,
  });
  const operationDuration = new Histogram({
    name: 'gen_ai_client_operation_duration_seconds',
    help: 'Duration of GenAI client operations sent to a provider (gen_ai.client.operation.duration); error_type set on failure, cancelled when MAOS stopped the call; response cache answers are not samples.',
    labelNames: names(
      'gen_ai_client_operation_duration_seconds',
      'gen_ai_operation_name',
      'gen_ai_provider_name',
      'gen_ai_request_model',
      'error_type',
    ),
    buckets: GEN_AI_DURATION_BUCKETS,
    registers,
  });
  const cost = new Counter({
    name: 'maos_llm_cost_usd_total',
    help: 'Estimated LLM spend in US dollars, by provider and model.',
    labelNames: names('maos_llm_cost_usd_total', 'provider', 'model'),
    registers,
  });
  const providerErrors = new Counter({
    name: 'maos_llm_provider_errors_total',
    help: 'Failed LLM provider calls (circuit_open: refused by the open breaker; cancelled: stopped by MAOS), by provider and error type.',
    labelNames: names('maos_llm_provider_errors_total', 'provider', 'error_type'),
    registers,
  });
  const circuit = new Gauge({
    name: 'maos_llm_circuit_state',
    help: 'Circuit breaker state per provider: 1 for the current state, 0 for the others.',
    labelNames: names('maos_llm_circuit_state', 'provider', 'state'),
    registers,
  });
  const cache = new Counter({
    name: 'maos_llm_cache_requests_total',
    help: 'LLM response cache lookups (an answer served from the store is no provider call), by provider and result (hit, miss, or error: the store could not be read and the provider was called).',
    labelNames: names('maos_llm_cache_requests_total', 'provider', 'result'),
    registers,
  });

  return {
    recordLlmCall(call) {
      const base = {
        gen_ai_operation_name: call.operation,
        gen_ai_provider_name: call.provider,
        gen_ai_request_model: call.model,
      };
      observe(
        operationDuration,
        labels('gen_ai_client_operation_duration_seconds', { ...base, error_type: call.errorType }),
        call.durationSeconds,
      );
      for (const [type, tokens] of [
        ['input', call.inputTokens],
        ['output', call.outputTokens],
      ] as const) {
        if (tokens === undefined) continue;
        observe(
          tokenUsage,
          labels('gen_ai_client_token_usage', { ...base, gen_ai_token_type: type }),
          tokens,
        );
      }
      if (call.costUsd !== undefined) {
        inc(
          cost,
          labels('maos_llm_cost_usd_total', { provider: call.provider, model: call.model }),
          call.costUsd,
        );
      }
      if (call.errorType !== undefined) {
        inc(
          providerErrors,
          labels('maos_llm_provider_errors_total', { provider: call.provider, error_type: call.errorType }),
        );
      }
    },
    recordProviderError: (provider, errorType) =>
      inc(providerErrors, labels('maos_llm_provider_errors_total', { provider, error_type: errorType })),
    setCircuitState(provider, state) {
      for (const candidate of CIRCUIT_STATES) {
        const set = labels('maos_llm_circuit_state', { provider, state: candidate });
        if (set) circuit.set(set, candidate === state ? 1 : 0);
      }
    },
    recordCacheResult: (provider, result) =>
      inc(cache, labels('maos_llm_cache_requests_total', { provider, result })),
  };
}
