// Ends the response stream of a request the client cancelled (notifications/cancelled) over
// Streamable HTTP. The SDK stops the handler and drops its result, but the request's SSE response
// only ends with a response: without one it stayed open (keep-alives, a held connection, the MCP
// session never idle) until the client went away, and a resume of it (Last-Event-ID) never ended.
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** JSON-RPC error code of the answer that ends a cancelled request (as LSP's RequestCancelled). */
export const REQUEST_CANCELLED = -32800;

/** Requests in flight remembered per connection; beyond this the oldest are forgotten. */
const MAX_IN_FLIGHT = 1000;

type RequestId = string | number;

function requestIdOf(value: unknown): RequestId | undefined {
  return typeof value === 'string' || typeof value === 'number' ? value : undefined;
}

/**
 * Instruments `transport` (after the MCP server connected to it): a `notifications/cancelled` for a
 * request still in flight is answered with JSON-RPC error REQUEST_CANCELLED, which ends its stream
 * through the transport's own path (stored for resumption, correlations released). The handler's
 * own result is dropped by the SDK once cancelled, so the request gets this one answer only;
 * clients ignore an answer to a request they cancelled.
 */
export function endCancelledRequests(transport: Transport): void {
  const inFlight = new Set<RequestId>();
  const deliver = transport.onmessage;
  transport.onmessage = (message, extra) => {
    const incoming = message as { id?: unknown; method?: unknown; params?: { requestId?: unknown } };
    const id = requestIdOf(incoming.id);
    if (id !== undefined && typeof incoming.method === 'string') {
      if (inFlight.size >= MAX_IN_FLIGHT) inFlight.delete(inFlight.values().next().value as RequestId);
      inFlight.add(id);
    }
    deliver?.(message, extra);
    if (incoming.method !== 'notifications/cancelled') return;
    const cancelled = requestIdOf(incoming.params?.requestId);
    if (cancelled === undefined || !inFlight.delete(cancelled)) return;
    const answer: JSONRPCMessage = {
      jsonrpc: '2.0',
      id: cancelled,
      error: { code: REQUEST_CANCELLED, message: 'Request cancelled' },
    };
    transport.send(answer).catch(() => {
      // The request's stream is already gone (the client left); nothing is left to end.
    });
  };
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    const outgoing = message as { id?: unknown; result?: unknown; error?: unknown };
    const id = requestIdOf(outgoing.id);
    if (id !== undefined && (outgoing.result !== undefined || outgoing.error !== undefined)) {
      inFlight.delete(id);
    }
    return send(message, options);
  };
}
