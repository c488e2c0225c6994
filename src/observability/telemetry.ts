// One call that sets up tracing and its adapters for the composition root: the tracer (OTLP when
// OTEL_* asks for it), GenAI span helpers, LLM call telemetry, the HTTP span plugin, MCP request
// spans and database spans.
import type { FastifyPluginAsync } from 'fastify';
import type { LogEvent } from 'kysely';
import { type OtelEnv, readOtelEnv } from '../config/otel-env.ts';
import type { Config } from '../config/schema.ts';
import { createQuerySpanLogger } from './db-tracing.ts';
import { createGenAiTracer, type GenAiTracer } from './genai-spans.ts';
import { createHttpTracingPlugin } from './http-tracing-plugin.ts';
import { createLlmTelemetry, type LlmTelemetry } from './llm-telemetry.ts';
import type { Logger } from './logger.ts';
import { createMcpTelemetry, type McpNetworkTransport, type McpTelemetry } from './mcp-telemetry.ts';
import type { Metrics } from './metrics.ts';
import { startTracing, type Tracing, type TracingOptions } from './tracing.ts';

export interface TelemetryOptions {
  /** `egress` (optional here): the OTLP exporter goes through `egress.proxy` where it applies. */
  config: Pick<Config, 'tracing' | 'logging'> & Partial<Pick<Config, 'egress'>>;
  metrics: Metrics;
  serviceVersion: string;
  /** OTEL_* settings; read from the environment when absent. */
  otel?: OtelEnv;
  /** Logs a warning (component `tracing`) per OTEL_* value ignored; without it they go to stderr. */
  logger?: Logger;
  /** Test seam, see TracingOptions.spanProcessors. */
  spanProcessors?: TracingOptions['spanProcessors'];
}

export interface Telemetry {
  tracing: Tracing;
  genAi: GenAiTracer;
  /** Pass to the LLM stack (`telemetry`): spans and metrics per provider call. */
  llm: LlmTelemetry;
  /** Register with the HTTP server's `plugins` (unencapsulated): one SERVER span per request. */
  httpPlugin: FastifyPluginAsync;
  /** Pass to an MCP server (`telemetry`): a span and a duration sample per request it handles. */
  mcpServer(networkTransport: McpNetworkTransport): McpTelemetry;
  /** Kysely `log` option: a span per query under the active span. */
  querySpanLogger(system: 'sqlite' | 'postgresql'): (event: LogEvent) => void;
  /** Flushes spans; call last on shutdown. */
  shutdown(): Promise<void>;
}

/** Creates the telemetry of a process. Cheap no-ops when tracing is not configured. */
export function createTelemetry(options: TelemetryOptions): Telemetry {
  const otel = options.otel ?? readOtelEnv();
  const tracing = startTracing({
    serviceName: 'maos',
    serviceVersion: options.serviceVersion,
    environment: options.config.logging.environment,
    otel,
    spanProcessors: options.spanProcessors,
    ...(options.logger ? { onWarning: warnTo(options.logger) } : {}),
    ...(options.config.egress ? { egressProxy: options.config.egress.proxy } : {}),
  });
  const genAi = createGenAiTracer({
    tracer: tracing.tracer,
    captureMessageContent: options.config.tracing.captureMessageContent || otel.captureMessageContent,
  });
  return {
    tracing,
    genAi,
    llm: createLlmTelemetry({ metrics: options.metrics, genAi }),
    httpPlugin: createHttpTracingPlugin({ tracer: tracing.tracer, enabled: tracing.enabled }),
    mcpServer: (networkTransport) =>
      createMcpTelemetry({ tracer: tracing.tracer, metrics: options.metrics, networkTransport }),
    querySpanLogger: (system) => createQuerySpanLogger({ tracer: tracing.tracer, system }),
    shutdown: () => tracing.shutdown(),
  };
}

function warnTo(logger: Logger): (message: string) => void {
  const tracingLogger = logger.child({ component: 'tracing' });
  return (message) => tracingLogger.warn(message);
}
