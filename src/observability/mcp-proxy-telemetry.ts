// Tracing of `maos mcp` in remote mode: that process has no config, no server and no metrics
// endpoint, only the OTEL_* variables. When they ask for traces, each request the stdio proxy
// handles gets its MCP server span, as on /mcp and in embedded mode, and the REST calls made while
// handling it carry that span's `traceparent`, so the server's work joins the client's trace.
// Without them the proxy makes no span, yet passes the client's `params._meta` trace context on to
// the REST calls unchanged: W3C propagation needs no SDK.
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  type Context,
  type ContextManager,
  context,
  createContextKey,
  propagation,
  ROOT_CONTEXT,
  type TextMapPropagator,
} from '@opentelemetry/api';
import { isTracingConfigured, type OtelEnv } from '../config/otel-env.ts';
import type { McpTelemetry } from './mcp-telemetry.ts';
import { createMcpTelemetry } from './mcp-telemetry.ts';

export interface McpProxyTelemetryOptions {
  otel: OtelEnv;
  serviceVersion: string;
}

export interface McpProxyTelemetry {
  /**
   * Pass to the stdio server: the span of each request when OTEL_* asks for trace export, else only
   * the pass-through of the client's trace context.
   */
  telemetry: McpTelemetry;
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
 * Otherwise the client's trace context is passed through as it came.
 */
export async function startMcpProxyTelemetry(options: McpProxyTelemetryOptions): Promise<McpProxyTelemetry> {
  if (!isTracingConfigured(options.otel)) return startTraceContextPassThrough();
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

/** The W3C trace context headers of one request, as the client sent them. */
interface TraceHeaders {
  traceparent: string;
  tracestate?: string;
}

const TRACE_HEADERS = createContextKey('maos.mcp.client-trace-headers');

/**
 * W3C traceparent, version 00 only: we forward the value without parsing it into a span context,
 * so a later version (whose format we cannot know) is not passed on as if it were 00.
 */
const TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;
/** W3C tracestate list members: `key=value`, simple or multi-tenant (`tenant@system`) keys. */
const TRACESTATE_MEMBER =
  /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;
/** W3C: at most 32 list members; 512 characters is what every participant must pass on. */
const MAX_TRACESTATE_MEMBERS = 32;
const MAX_TRACESTATE_LENGTH = 512;

/** The client's valid W3C headers in `_meta`, or undefined; an invalid tracestate alone is dropped. */
function readTraceHeaders(meta: unknown): TraceHeaders | undefined {
  if (typeof meta !== 'object' || meta === null) return undefined;
  const { traceparent, tracestate } = meta as Record<string, unknown>;
  if (typeof traceparent !== 'string' || !TRACEPARENT.test(traceparent)) return undefined;
  return isValidTracestate(tracestate) ? { traceparent, tracestate } : { traceparent };
}

function isValidTracestate(value: unknown): value is string {
  if (typeof value !== 'string' || value.length > MAX_TRACESTATE_LENGTH) return false;
  const members = value
    .split(',')
    .map((member) => member.replace(/^[ \t]+|[ \t]+$/g, ''))
    .filter((member) => member !== '');
  return (
    members.length > 0 &&
    members.length <= MAX_TRACESTATE_MEMBERS &&
    members.every((member) => TRACESTATE_MEMBER.test(member))
  );
}

/**
 * Keeps the context of the request being handled across its awaits, as the SDK's context manager
 * does, so that the REST client's `propagation.inject(context.active(), …)` finds it.
 */
function createContextManager(): ContextManager {
  const storage = new AsyncLocalStorage<Context>();
  const manager: ContextManager = {
    active: () => storage.getStore() ?? ROOT_CONTEXT,
    with: (ctx, fn, thisArg, ...args) => storage.run(ctx, () => fn.call(thisArg, ...args)),
    bind: (ctx, target) => {
      if (typeof target !== 'function') return target;
      const fn = target as (...args: unknown[]) => unknown;
      return function bound(this: unknown, ...args: unknown[]) {
        return storage.run(ctx, () => fn.apply(this, args));
      } as typeof target;
    },
    enable: () => manager,
    disable: () => {
      storage.disable();
      return manager;
    },
  };
  return manager;
}

/** Injects the client's headers kept in the context as they are; extracts nothing. */
const PASS_THROUGH_PROPAGATOR: TextMapPropagator = {
  inject(ctx, carrier, setter) {
    const headers = ctx.getValue(TRACE_HEADERS) as TraceHeaders | undefined;
    if (headers === undefined) return;
    setter.set(carrier, 'traceparent', headers.traceparent);
    if (headers.tracestate !== undefined) setter.set(carrier, 'tracestate', headers.tracestate);
  },
  extract: (ctx) => ctx,
  fields: () => ['traceparent', 'tracestate'],
};

/**
 * Registers the pass-through globally (nothing else in this process traces) and returns the
 * telemetry that puts each request's headers in the context it is handled in.
 */
function startTraceContextPassThrough(): McpProxyTelemetry {
  const manager = createContextManager();
  context.setGlobalContextManager(manager);
  propagation.setGlobalPropagator(PASS_THROUGH_PROPAGATOR);
  return {
    telemetry: {
      startRequest(request) {
        const params = request.params as { _meta?: unknown } | undefined;
        const headers = readTraceHeaders(params?._meta);
        return {
          context: headers === undefined ? ROOT_CONTEXT : ROOT_CONTEXT.setValue(TRACE_HEADERS, headers),
          end: () => {},
        };
      },
    },
    shutdown: async () => {
      propagation.disable();
      context.disable();
    },
  };
}
