// MCP requests by method (maos_mcp_requests_total): watches one connection's transport, pairing
// each JSON-RPC request with the response sent for it. Transport-agnostic (HTTP or stdio).
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';

/** Receives one finished request: its JSON-RPC method and whether it failed. */
export type McpRequestRecorder = (method: string, outcome: 'success' | 'error') => void;

/**
 * Requests awaiting their response, per connection. A client that never waits for its answers
 * (or a server that drops them) must not grow memory: beyond this the oldest are forgotten.
 */
const MAX_PENDING = 1000;

type RequestId = string | number;

function requestIdOf(message: { id?: unknown }): RequestId | undefined {
  return typeof message.id === 'string' || typeof message.id === 'number' ? message.id : undefined;
}

/**
 * Instruments `transport`, before or after the MCP server connects to it (the SDK chains an
 * existing `onmessage`; transports call whichever `onmessage` is set when a message arrives).
 * A JSON-RPC error and a tool result with `isError: true` count as `error`.
 */
export function observeMcpRequests(transport: Transport, record: McpRequestRecorder): void {
  const pending = new Map<RequestId, string>();
  const previous = transport.onmessage;
  transport.onmessage = (message, extra) => {
    const request = message as { id?: unknown; method?: unknown };
    const id = requestIdOf(request);
    if (id !== undefined && typeof request.method === 'string') {
      if (pending.size >= MAX_PENDING) pending.delete(pending.keys().next().value as RequestId);
      pending.set(id, request.method);
    }
    previous?.(message, extra);
  };
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    const response = message as { id?: unknown; result?: unknown; error?: unknown };
    const id = requestIdOf(response);
    const method = id === undefined ? undefined : pending.get(id);
    if (method !== undefined && (response.result !== undefined || response.error !== undefined)) {
      pending.delete(id as RequestId);
      const toolFailed = (response.result as { isError?: unknown } | undefined)?.isError === true;
      record(method, response.error !== undefined || toolFailed ? 'error' : 'success');
    }
    return send(message, options);
  };
}
