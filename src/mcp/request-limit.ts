// Requests in flight on one MCP connection, bounded: each JSON-RPC request holds a slot from the
// moment it arrives until its response is sent, it is cancelled (notifications/cancelled: no
// response will come, and its handler is told to stop) or the connection closes. A request beyond
// the limit is answered at once with a JSON-RPC error (-32602, `data.code`
// RESOURCE_LIMIT_EXCEEDED naming the setting), so a client cannot start an unbounded number of
// long calls (an `orchestrate` that waits up to an hour, say) and hold that much of the server.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, MessageExtraInfo } from '@modelcontextprotocol/sdk/types.js';
import { AppError, toAppError } from '../errors/app-error.ts';
import type { ReleaseSlot, SlotLimit } from './capacity-slots.ts';
import { toProtocolError } from './tool-result.ts';

type RequestId = string | number;

/** Takes a slot for one request in flight; throws RESOURCE_LIMIT_EXCEEDED when there is none. */
export type ReserveRequest = () => ReleaseSlot;

/** Requests that never count: a ping is answered at once, and tells a client the server is there. */
const UNCOUNTED_METHODS = new Set(['ping']);

function requestIdOf(value: unknown): RequestId | undefined {
  return typeof value === 'string' || typeof value === 'number' ? value : undefined;
}

/** The refusal of a request beyond `limit`, in the words of the other MCP caps. */
export function requestLimitExceeded(limit: SlotLimit, scope: string): AppError {
  return new AppError(
    'RESOURCE_LIMIT_EXCEEDED',
    `Too many MCP requests in flight ${scope} (${limit.setting} = ${limit.max}); wait for one to finish or cancel one`,
    { details: { setting: limit.setting, limit: limit.max } },
  );
}

/**
 * Slots for the requests of one connection: at most `perConnection.max` at once, each also taking
 * one of `shared` (say, its caller's across all its connections) when given.
 */
export function createRequestSlots(perConnection: SlotLimit, shared?: ReserveRequest): ReserveRequest {
  let held = 0;
  return () => {
    if (held >= perConnection.max) throw requestLimitExceeded(perConnection, 'on this MCP session');
    const releaseShared = shared?.();
    held += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      held -= 1;
      releaseShared?.();
    };
  };
}

/**
 * Told of a request refused for the limit, before its answer is sent (an audit record of a
 * state-changing tool call); `extra` is what the transport passed with it (its caller).
 */
export type OnRequestRefused = (
  message: JSONRPCMessage,
  extra: MessageExtraInfo | undefined,
  error: AppError,
) => Promise<void>;

/** Makes every connection of `server` hold its requests in flight to `reserveFor()`'s slots. */
export function limitRequestsInFlight(
  server: McpServer,
  reserveFor: () => ReserveRequest,
  onRefused?: OnRequestRefused,
): void {
  const connect = server.connect.bind(server);
  server.connect = async (transport) => {
    await connect(transport);
    holdRequestSlots(transport, reserveFor(), onRefused);
  };
}

function holdRequestSlots(transport: Transport, reserve: ReserveRequest, onRefused?: OnRequestRefused): void {
  /** The slots of the requests in flight, by id (a client that reuses an id in flight holds two). */
  const held = new Map<RequestId, ReleaseSlot[]>();
  const release = (id: RequestId): void => {
    const slots = held.get(id);
    slots?.shift()?.();
    if (slots?.length === 0) held.delete(id);
  };

  const next = transport.onmessage;
  transport.onmessage = (message, extra) => {
    const incoming = message as { id?: unknown; method?: unknown; params?: { requestId?: unknown } };
    const id = requestIdOf(incoming.id);
    if (id !== undefined && typeof incoming.method === 'string' && !UNCOUNTED_METHODS.has(incoming.method)) {
      let slot: ReleaseSlot;
      try {
        slot = reserve();
      } catch (error) {
        const refusal = toProtocolError(error);
        const answer = {
          jsonrpc: '2.0',
          id,
          error: { code: refusal.code, message: refusal.message, data: refusal.data },
        } as JSONRPCMessage;
        const recorded = onRefused?.(message, extra, toAppError(error)) ?? Promise.resolve();
        recorded
          .catch(() => {
            // Recorders report their own failures; the answer goes out all the same.
          })
          .then(() => transport.send(answer, { relatedRequestId: id }))
          .catch(() => {
            // The client went away; nothing is waiting for the answer.
          });
        return;
      }
      const slots = held.get(id);
      if (slots === undefined) held.set(id, [slot]);
      else slots.push(slot);
    } else if (incoming.method === 'notifications/cancelled') {
      // No response will be sent; the SDK tells the handler to stop.
      const cancelled = requestIdOf(incoming.params?.requestId);
      if (cancelled !== undefined) release(cancelled);
    }
    next?.(message, extra);
  };

  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    const outgoing = message as { id?: unknown; result?: unknown; error?: unknown };
    const id = requestIdOf(outgoing.id);
    if (id !== undefined && (outgoing.result !== undefined || outgoing.error !== undefined)) release(id);
    return send(message, options);
  };

  const previousOnClose = transport.onclose;
  transport.onclose = () => {
    for (const slots of held.values()) for (const slot of slots) slot();
    held.clear();
    previousOnClose?.();
  };
}
