// OpenTelemetry tracing: a Node tracer provider exporting over OTLP/HTTP when the standard OTEL_*
// variables ask for it (off otherwise; through `egress.proxy` where it applies), span helpers, and
// the W3C trace context stored with a session so that every task of the session, on any replica and
// after restarts, joins one trace.
import type { Agent } from 'node:http';
import {
  type Context,
  context,
  propagation,
  type Span,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import {
  type BatchSpanProcessorSettings,
  isTracingConfigured,
  type OtelEnv,
  type TracesSampler,
} from '../config/otel-env.ts';
import type { Config } from '../config/schema.ts';
import { createNodeProxyAgent } from '../security/egress-proxy.ts';
import { StderrSpanExporter } from './stderr-span-exporter.ts';

/** Instrumentation scope name of every MAOS span. */
export const TRACER_NAME = 'maos';

export interface TracingOptions {
  serviceName: string;
  serviceVersion: string;
  /** Deployment environment (config `logging.environment`), exported as deployment.environment.name. */
  environment?: string;
  otel: OtelEnv;
  /** Replaces the exporter (tests pass an in-memory one); tracing is then on regardless of OTEL_*. */
  spanProcessors?: SpanProcessor[];
  /** `egress.proxy`: the OTLP exporter reaches its endpoint through it, as other outbound calls do. */
  egressProxy?: Config['egress']['proxy'];
  /**
   * Told each OTEL_* value that was ignored (`otel.warnings`) when tracing starts; default: a
   * `maos: warning:` line on stderr (the `maos mcp` proxy has no logger, and its stdout is the protocol).
   */
  onWarning?: (message: string) => void;
}

export interface Tracing {
  /** False when no exporter is configured: spans are no-ops and cost next to nothing. */
  readonly enabled: boolean;
  readonly tracer: Tracer;
  /** Flushes pending spans and stops exporting (call on shutdown, after the HTTP server closed). */
  shutdown(): Promise<void>;
}

/**
 * Starts tracing when configured and registers the provider globally (AsyncLocalStorage context
 * manager, W3C propagator), so spans started anywhere nest under the active one. Sampling follows
 * OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (default: parent-based, always on), span limits
 * the OTEL_SPAN_* / OTEL_ATTRIBUTE_* limits, and the exporter's batching OTEL_BSP_*.
 */
export function startTracing(options: TracingOptions): Tracing {
  const exporting =
    options.spanProcessors === undefined && isTracingConfigured(options.otel)
      ? createExportProcessor(options.otel, options.egressProxy)
      : undefined;
  const processors = options.spanProcessors ?? (exporting ? [exporting.processor] : []);
  if (processors.length === 0) {
    return { enabled: false, tracer: trace.getTracer(TRACER_NAME), shutdown: async () => {} };
  }
  const warn = options.onWarning ?? ((message) => process.stderr.write(`maos: warning: ${message}\n`));
  for (const message of options.otel.warnings) warn(message);
  const provider = new TracerProvider({
    sampler: createSampler(options.otel.tracesSampler),
    spanLimits: options.otel.spanLimits,
    resource: resourceFromAttributes({
      ...options.otel.resourceAttributes,
      [ATTR_SERVICE_NAME]: options.otel.serviceName ?? options.serviceName,
      [ATTR_SERVICE_VERSION]: options.serviceVersion,
      ...(options.environment ? { 'deployment.environment.name': options.environment } : {}),
    }),
    spanProcessors: processors,
  });
  registerGlobally(provider);
  return {
    enabled: true,
    tracer: provider.getTracer(TRACER_NAME, options.serviceVersion),
    shutdown: async () => {
      // A collector that cannot be reached at shutdown costs the last spans, not the rest of the
      // stop: a rejection here would skip the clean-up below and fail the server's stop.
      await provider.shutdown().catch((error: unknown) => {
        warn(
          `the last spans could not be exported at shutdown: ${error instanceof Error ? error.message : String(error)}`,
        );
      });
      exporting?.agent?.destroy();
      trace.disable();
      context.disable();
    },
  };
}

/**
 * What the SDK's `register()` did before the SDK stopped providing it: the provider, an
 * AsyncLocalStorage context manager and the W3C trace-context and baggage propagators, globally.
 */
function registerGlobally(provider: TracerProvider): void {
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
}

/** The sampler OTEL_TRACES_SAMPLER names (the SDK no longer reads the variable itself). */
function createSampler(sampler: TracesSampler): Sampler {
  const root =
    sampler.root === 'always_on'
      ? new AlwaysOnSampler()
      : sampler.root === 'always_off'
        ? new AlwaysOffSampler()
        : new TraceIdRatioBasedSampler(sampler.ratio);
  return sampler.parentBased ? new ParentBasedSampler({ root }) : root;
}

/** The exporter's URL when OTEL_* names none (the OTLP/HTTP default, on loopback: never proxied). */
const DEFAULT_TRACES_ENDPOINT = 'http://localhost:4318/v1/traces';

function createExportProcessor(
  otel: OtelEnv,
  egressProxy: Config['egress']['proxy'] | undefined,
): { processor: SpanProcessor; agent?: Agent } {
  if (otel.tracesExporter === 'console') {
    return { processor: createBatchSpanProcessor(new StderrSpanExporter(), otel.batchSpanProcessor) };
  }
  // The exporter sends with node:http, not fetch: a node agent through the proxy, chosen once for
  // its one endpoint (keep-alive, as the exporter's own agent has it).
  const endpoint = otel.tracesEndpoint ?? DEFAULT_TRACES_ENDPOINT;
  const agent =
    egressProxy && URL.canParse(endpoint)
      ? createNodeProxyAgent(egressProxy, new URL(endpoint), { keepAlive: true })
      : undefined;
  // Headers, timeout and compression come from OTEL_EXPORTER_OTLP_* read by the exporter itself.
  const exporter = new OTLPTraceExporter({
    ...(otel.tracesEndpoint ? { url: otel.tracesEndpoint } : {}),
    ...(agent ? { httpAgentOptions: () => agent } : {}),
  });
  return {
    processor: createBatchSpanProcessor(exporter, otel.batchSpanProcessor),
    ...(agent ? { agent } : {}),
  };
}

/** The SDK's batch span processor around `exporter`, with the OTEL_BSP_* settings that are set. */
export function createBatchSpanProcessor(
  exporter: SpanExporter,
  settings: BatchSpanProcessorSettings,
): SpanProcessor {
  return new BatchSpanProcessor({ exporter, ...settings });
}

/**
 * Runs `fn` with `span` active, records an exception and `error.type` when it throws, and ends
 * the span either way. Returns what `fn` returns.
 */
export async function withSpan<T>(span: Span, fn: (span: Span) => Promise<T> | T): Promise<T> {
  try {
    return await context.with(trace.setSpan(context.active(), span), () => fn(span));
  } catch (error) {
    markSpanFailed(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** Sets ERROR status, `error.type` (the AppError code or the error class) and an exception event. */
export function markSpanFailed(span: Span, error: unknown): void {
  const err = error instanceof Error ? error : new Error(String(error));
  const code = (err as { code?: unknown }).code;
  span.setAttribute('error.type', typeof code === 'string' ? code : err.name || '_OTHER');
  span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
}

/** W3C trace context of a span, as stored with a session (e.g. in its metadata or a column). */
export interface StoredTraceContext {
  traceparent: string;
  tracestate?: string;
}

const propagator = new W3CTraceContextPropagator();
const recordSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};
const recordGetter: TextMapGetter<Record<string, string>> = {
  get: (carrier, key) => carrier[key],
  keys: (carrier) => Object.keys(carrier),
};

/** The trace context of `ctx` (default: the active one), or undefined when no span is recording there. */
export function serializeTraceContext(ctx: Context = context.active()): StoredTraceContext | undefined {
  const carrier: Record<string, string> = {};
  propagator.inject(ctx, carrier, recordSetter);
  if (carrier.traceparent === undefined) return undefined;
  return carrier.tracestate
    ? { traceparent: carrier.traceparent, tracestate: carrier.tracestate }
    : { traceparent: carrier.traceparent };
}

/**
 * A context whose parent is the stored span: spans started in it join the stored trace, in this
 * process or another one, long after the original span ended. Invalid input yields the root context.
 */
export function restoreTraceContext(stored: StoredTraceContext | undefined | null): Context {
  if (!stored || typeof stored.traceparent !== 'string') return context.active();
  const carrier: Record<string, string> = { traceparent: stored.traceparent };
  if (typeof stored.tracestate === 'string') carrier.tracestate = stored.tracestate;
  return propagator.extract(context.active(), carrier, recordGetter);
}
