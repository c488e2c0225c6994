// Tracing of `maos mcp` in remote mode: that process has no config, no server and no metrics
// endpoint, only the OTEL_* variables. When they ask for traces, each request the stdio proxy
// handles gets its MCP server span, as on /mcp and in embedded mode, and the REST calls made while
// handling it carry that span's `traceparent`, so the server's work joins the client's trace.
import { isTracingConfigured, type OtelEnv } from '../config/otel-env.ts';
import { createMcpTelemetry, type McpTelemetry } from './mcp-telemetry.ts';

export interface McpProxyTelemetryOptions {
  otel: OtelEnv;
  serviceVersion: string;
}

export interface McpProxyTelemetry {
  /** Pass to the stdio server; absent when OTEL_* asks for no trace export. */
  telemetry?: McpTelemetry;
  /** Flushes pending spans; call once the proxy has stopped. */
  shutdown(): Promise<void>;
}

/**
 * Nothing could scrape a histogram in this process (no `/metrics`), so the duration samples are
 * dropped; the spans carry the same information.
 */
const NO_METRICS = { recordMcpOperation: () => {} };

/**
 * Starts tracing for the remote-mode proxy when OTEL_* configures an exporter. The SDK is loaded
 * only then: it adds a few hundred milliseconds to the start of a process that clients spawn.
 */
export async function startMcpProxyTelemetry(options: McpProxyTelemetryOptions): Promise<McpProxyTelemetry> {
  if (!isTracingConfigured(options.otel)) return { shutdown: async () => {} };
  const { startTracing } = await import('./tracing.ts');
  const tracing = startTracing({
    serviceName: 'maos',
    serviceVersion: options.serviceVersion,
    otel: options.otel,
  });
  return {
    telemetry: createMcpTelemetry({ tracer: tracing.tracer, metrics: NO_METRICS, networkTransport: 'pipe' }),
    shutdown: () => tracing.shutdown(),
  };
}
