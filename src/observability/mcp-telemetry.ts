// MCP server spans and the mcp.server.operation.duration metric, after the OTel MCP semantic
// conventions (development status): one SERVER span per request handled, the child of the trace
// context the client put in `params._meta` (else of the active span: the /mcp HTTP request's), and
// active while the request is handled, so the work a tool starts (a session) continues its trace.
import {
  type Attributes,
  type Context,
  context,
  type Link,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { MCP_METHODS, MCP_TOOLS } from './metric-labels.ts';
import type { Metrics } from './metrics.ts';

/** `network.transport`: `tcp` for Streamable HTTP, `pipe` for stdio. */
export type McpNetworkTransport = 'tcp' | 'pipe';

/** An incoming JSON-RPC request, as the transport received it. */
export interface McpRequestStart {
  method: string;
  id: string | number;
  params?: unknown;
  /** The MCP session (Mcp-Session-Id); absent on stdio. */
  sessionId?: string;
  /** The negotiated protocol version, when known before the response. */
  protocolVersion?: string;
}

/** How a request ended: its response, or why none was sent. */
export type McpRequestEnd =
  | { result?: unknown; error?: { code?: unknown; message?: unknown }; protocolVersion?: string }
  | { abandoned: 'cancelled' | 'connection_closed' | '_OTHER' };

/** One request being handled. */
export interface McpRequestTelemetry {
  /** Handle the request in this context: its span is the active one there. */
  readonly context: Context;
  /** Ends the span and records the duration; later calls do nothing. */
  end(outcome: McpRequestEnd): void;
}

/** Starts the telemetry of each request a server's transport receives. */
export interface McpTelemetry {
  startRequest(request: McpRequestStart): McpRequestTelemetry;
}

export interface McpTelemetryOptions {
  tracer: Tracer;
  metrics: Pick<Metrics, 'recordMcpOperation'>;
  networkTransport: McpNetworkTransport;
}

/** Methods whose params name a resource (`mcp.resource.uri`). */
const RESOURCE_METHODS = new Set(['resources/read', 'resources/subscribe', 'resources/unsubscribe']);
/** Caller-chosen strings on a span are cut to this length: a method or tool name is never longer. */
const MAX_ATTRIBUTE_LENGTH = 128;
const KNOWN_METHODS = new Set<string>(MCP_METHODS);
const KNOWN_TOOLS = new Set<string>(MCP_TOOLS);

const metaGetter: TextMapGetter<Record<string, unknown>> = {
  get: (carrier, key) => {
    const value = carrier[key];
    return typeof value === 'string' ? value : undefined;
  },
  keys: (carrier) => Object.keys(carrier),
};

function recordOf(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function stringParam(params: Record<string, unknown> | undefined, key: string): string | undefined {
  const value = params?.[key];
  return typeof value === 'string' ? value.slice(0, MAX_ATTRIBUTE_LENGTH) : undefined;
}

/** The stable MAOS code a tool error starts with (`CODE: message`), or undefined. */
function toolErrorCode(result: Record<string, unknown>): string | undefined {
  const first = Array.isArray(result.content) ? recordOf(result.content[0]) : undefined;
  const text = typeof first?.text === 'string' ? first.text : '';
  return /^([A-Z][A-Z0-9_]{1,63}):/.exec(text)?.[1];
}

/** Creates the MCP request telemetry of one kind of transport. */
export function createMcpTelemetry(options: McpTelemetryOptions): McpTelemetry {
  const { tracer, metrics, networkTransport } = options;
  return {
    startRequest(request) {
      const startedAt = performance.now();
      const params = recordOf(request.params);
      const method = request.method.slice(0, MAX_ATTRIBUTE_LENGTH);
      const toolName = method === 'tools/call' ? stringParam(params, 'name') : undefined;
      const promptName = method === 'prompts/get' ? stringParam(params, 'name') : undefined;
      // A target only when it is low-cardinality: one of our tools, never a resource URI.
      const target = toolName !== undefined && KNOWN_TOOLS.has(toolName) ? toolName : undefined;
      const spanMethod = KNOWN_METHODS.has(method) ? method : '_OTHER';
      const attributes: Attributes = {
        'mcp.method.name': method,
        'jsonrpc.request.id': String(request.id),
        'network.transport': networkTransport,
      };
      if (request.sessionId !== undefined) attributes['mcp.session.id'] = request.sessionId;
      if (request.protocolVersion !== undefined) attributes['mcp.protocol.version'] = request.protocolVersion;
      if (toolName !== undefined) {
        attributes['gen_ai.tool.name'] = toolName;
        attributes['gen_ai.operation.name'] = 'execute_tool';
      }
      if (promptName !== undefined) attributes['gen_ai.prompt.name'] = promptName;
      const uri = RESOURCE_METHODS.has(method) ? stringParam(params, 'uri') : undefined;
      if (uri !== undefined) attributes['mcp.resource.uri'] = uri;

      // The client's context in `_meta` is the parent; the transport's (HTTP) span becomes a link.
      const ambient = context.active();
      const meta = recordOf(params?._meta);
      const parent = meta ? propagation.extract(ambient, meta, metaGetter) : ambient;
      const ambientSpan = trace.getSpanContext(ambient);
      const fromMeta = trace.getSpanContext(parent) !== ambientSpan;
      const links: Link[] =
        fromMeta && ambientSpan !== undefined && trace.isSpanContextValid(ambientSpan)
          ? [{ context: ambientSpan }]
          : [];
      const span: Span = tracer.startSpan(
        target === undefined ? spanMethod : `${spanMethod} ${target}`,
        { kind: SpanKind.SERVER, attributes, links },
        parent,
      );
      let ended = false;
      return {
        context: trace.setSpan(parent, span),
        end(outcome) {
          if (ended) return;
          ended = true;
          let errorType: string | undefined;
          let rpcStatusCode: string | undefined;
          let protocolVersion = request.protocolVersion;
          if ('abandoned' in outcome) {
            errorType = outcome.abandoned;
            span.setStatus({ code: SpanStatusCode.ERROR, message: `no response: ${outcome.abandoned}` });
          } else if (outcome.error !== undefined) {
            rpcStatusCode = String(outcome.error.code);
            errorType = rpcStatusCode;
            span.setAttribute('rpc.response.status_code', rpcStatusCode);
            const message = typeof outcome.error.message === 'string' ? outcome.error.message : undefined;
            span.setStatus({ code: SpanStatusCode.ERROR, ...(message ? { message } : {}) });
          } else {
            const result = recordOf(outcome.result);
            if (result?.isError === true) {
              errorType = 'tool_error';
              const code = toolErrorCode(result);
              span.setStatus({ code: SpanStatusCode.ERROR, message: code ?? 'The tool reported an error' });
            }
            if (protocolVersion === undefined && outcome.protocolVersion !== undefined) {
              protocolVersion = outcome.protocolVersion;
              span.setAttribute('mcp.protocol.version', protocolVersion);
            }
          }
          if (errorType !== undefined) span.setAttribute('error.type', errorType);
          span.end();
          metrics.recordMcpOperation({
            method: request.method,
            ...(toolName === undefined ? {} : { toolName }),
            ...(errorType === undefined ? {} : { errorType }),
            ...(rpcStatusCode === undefined ? {} : { rpcStatusCode }),
            ...(protocolVersion === undefined ? {} : { protocolVersion }),
            networkTransport,
            durationSeconds: (performance.now() - startedAt) / 1000,
          });
        },
      };
    },
  };
}
