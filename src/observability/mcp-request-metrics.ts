// MCP requests by method (maos_mcp_requests_total), and their spans and durations (mcp-telemetry.ts):
// watches one connection's transport, pairing each JSON-RPC request with the response sent for it.
// Transport-agnostic (HTTP or stdio).

import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { context } from '@opentelemetry/api';
import type { McpRequestTelemetry, McpTelemetry } from './mcp-telemetry.ts';

/** Receives one finished request: its JSON-RPC method and whether it failed. */
export type McpRequestRecorder = (method: string, outcome: 'success' | 'error') => void;

/**
 * Requests awaiting their response, per connection. A client that never waits for its answers
 * (or a server that drops them) must not grow memory: beyond this the oldest are forgotten.
 */
const MAX_PENDING = 1000;

type RequestId = string | number;

interface PendingRequest {
  method: string;
  telemetry?: McpRequestTelemetry;
}

function requestIdOf(message: { id?: unknown }): RequestId | undefined {
  return typeof message.id === 'string' || typeof message.id === 'number' ? message.id : undefined;
}

/** The Mcp-Protocol-Version header of a Streamable HTTP request. */
function protocolHeaderOf(extra: unknown): string | undefined {
  const headers = (extra as { requestInfo?: { headers?: Record<string, unknown> } } | undefined)?.requestInfo
    ?.headers;
  const value = headers?.['mcp-protocol-version'];
  return typeof value === 'string' ? value : undefined;
}

/**
 * Instruments `transport`, before or after the MCP server connects to it (the SDK chains an
 * existing `onmessage`; transports call whichever `onmessage` is set when a message arrives).
 * A JSON-RPC error and a tool result with `isError: true` count as `error`. With `telemetry`, each
 * request also gets a span, active while the server handles it, and a duration sample.
 */
export function observeMcpRequests(
  transport: Transport,
  record: McpRequestRecorder | undefined,
  telemetry?: McpTelemetry,
): void {
  const pending = new Map<RequestId, PendingRequest>();
  /** The version `initialize` negotiated on this connection (stdio sends no version header). */
  let negotiated: string | undefined;
  const previous = transport.onmessage;
  transport.onmessage = (message, extra) => {
    const request = message as { id?: unknown; method?: unknown; params?: unknown };
    const id = requestIdOf(request);
    if (typeof request.method === 'string' && id === undefined) {
      if (request.method === 'notifications/cancelled') {
        // The SDK sends no response for a cancelled request: its span ends here.
        const cancelled = requestIdOf({ id: (request.params as { requestId?: unknown })?.requestId });
        const entry = cancelled === undefined ? undefined : pending.get(cancelled);
        if (entry?.telemetry) {
          pending.delete(cancelled as RequestId);
          entry.telemetry.end({ abandoned: 'cancelled' });
        }
      }
    } else if (id !== undefined && typeof request.method === 'string') {
      if (pending.size >= MAX_PENDING) {
        const oldest = pending.keys().next().value as RequestId;
        pending.get(oldest)?.telemetry?.end({ abandoned: '_OTHER' });
        pending.delete(oldest);
      }
      const version = protocolHeaderOf(extra) ?? negotiated;
      const started = telemetry?.startRequest({
        method: request.method,
        id,
        params: request.params,
        ...(transport.sessionId === undefined ? {} : { sessionId: transport.sessionId }),
        ...(version === undefined ? {} : { protocolVersion: version }),
      });
      pending.set(id, started ? { method: request.method, telemetry: started } : { method: request.method });
      if (started) {
        context.with(started.context, () => previous?.(message, extra));
        return;
      }
    }
    previous?.(message, extra);
  };
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    const response = message as { id?: unknown; result?: unknown; error?: unknown };
    const id = requestIdOf(response);
    const entry = id === undefined ? undefined : pending.get(id);
    if (entry !== undefined && (response.result !== undefined || response.error !== undefined)) {
      pending.delete(id as RequestId);
      const result = response.result as { isError?: unknown; protocolVersion?: unknown } | undefined;
      if (entry.method === 'initialize' && typeof result?.protocolVersion === 'string') {
        negotiated = result.protocolVersion;
      }
      record?.(entry.method, response.error !== undefined || result?.isError === true ? 'error' : 'success');
      entry.telemetry?.end({
        result: response.result,
        ...(response.error === undefined ? {} : { error: response.error as { code?: unknown } }),
        ...(negotiated === undefined ? {} : { protocolVersion: negotiated }),
      });
    }
    return send(message, options);
  };
  if (telemetry) {
    // A connection closed with requests in flight sends them no response.
    const previousOnClose = transport.onclose;
    transport.onclose = () => {
      for (const entry of pending.values()) entry.telemetry?.end({ abandoned: 'connection_closed' });
      pending.clear();
      previousOnClose?.();
    };
  }
}
