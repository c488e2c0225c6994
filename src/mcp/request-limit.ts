// Requests in flight on one MCP connection, bounded: each JSON-RPC request holds a slot from the
// moment it arrives until its response is sent, the SDK stops its handler without one (a
// notifications/cancelled the SDK acts on: not one it ignores, which leaves the call running) or
// the connection closes. A request beyond the limit is answered at once with a JSON-RPC error
// (-32602, `data.code` RESOURCE_LIMIT_EXCEEDED naming the setting), so a client cannot start an
// unbounded number of long calls (an `orchestrate` that waits up to an hour, say) and hold that
// much of the server. A request whose id is already in flight is refused too (-32602,
// VALIDATION_FAILED; MCP forbids reusing an id): answers and cancellations name requests by id.
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

/**
 * The AbortSignal the SDK hands the handler of request `id` of `server`'s connection, once it was
 * given the request (undefined when it answered it at once, or none runs). The signal aborts when
 * the SDK stops the handler and drops its result: a notifications/cancelled it acts on, or the
 * connection closing. The SDK (1.32.2) keeps the controllers in a private map, with no accessor;
 * request-limit.test.ts checks it is there.
 */
function handlerSignals(server: McpServer): (id: RequestId) => AbortSignal | undefined {
  const controllers: unknown = Reflect.get(server.server, '_requestHandlerAbortControllers');
  return (id) => {
    const controller = controllers instanceof Map ? controllers.get(id) : undefined;
    return controller instanceof AbortController ? controller.signal : undefined;
  };
}

/** Makes every connection of `server` hold its requests in flight to `reserveFor()`'s slots. */
export function limitRequestsInFlight(
  server: McpServer,
  reserveFor: () => ReserveRequest,
  onRefused?: OnRequestRefused,
): void {
  const connect = server.connect.bind(server);
  server.connect = async (transport) => {
    await connect(transport);
    holdRequestSlots(transport, reserveFor(), handlerSignals(server), onRefused);
  };
}

/** The refusal of a request whose id is already in flight: its slot and its answer could not be told apart. */
function duplicateRequestId(id: RequestId): AppError {
  return new AppError(
    'VALIDATION_FAILED',
    `Request id ${JSON.stringify(id)} is already in flight on this MCP session; each request needs an id of its own`,
  );
}

function holdRequestSlots(
  transport: Transport,
  reserve: ReserveRequest,
  signalOf: (id: RequestId) => AbortSignal | undefined,
  onRefused?: OnRequestRefused,
): void {
  /** The slot of each request in flight, by id (ids are unique among them: a duplicate is refused). */
  const held = new Map<RequestId, ReleaseSlot>();
  /** Answers of refused requests: they held no slot, and free none (not that of the id's request in flight). */
  const refusals = new WeakSet<object>();
  const release = (id: RequestId, slot?: ReleaseSlot): void => {
    const holding = held.get(id);
    if (holding === undefined || (slot !== undefined && holding !== slot)) return;
    held.delete(id);
    holding();
  };

  const refuse = (
    message: JSONRPCMessage,
    extra: MessageExtraInfo | undefined,
    id: RequestId,
    error: unknown,
  ): void => {
    const refusal = toProtocolError(error);
    const answer = {
      jsonrpc: '2.0',
      id,
      error: { code: refusal.code, message: refusal.message, data: refusal.data },
    } as JSONRPCMessage;
    refusals.add(answer);
    const recorded = onRefused?.(message, extra, toAppError(error)) ?? Promise.resolve();
    recorded
      .catch(() => {
        // Recorders report their own failures; the answer goes out all the same.
      })
      .then(() => transport.send(answer, { relatedRequestId: id }))
      .catch(() => {
        // The client went away; nothing is waiting for the answer.
      });
  };

  const next = transport.onmessage;
  transport.onmessage = (message, extra) => {
    const incoming = message as { id?: unknown; method?: unknown };
    const id = requestIdOf(incoming.id);
    if (id === undefined || typeof incoming.method !== 'string') {
      next?.(message, extra);
      return;
    }
    if (held.has(id)) {
      refuse(message, extra, id, duplicateRequestId(id));
      return;
    }
    let slot: ReleaseSlot;
    try {
      // An uncounted request is still in flight under its id: its answer names that id.
      slot = UNCOUNTED_METHODS.has(incoming.method) ? () => {} : reserve();
    } catch (error) {
      refuse(message, extra, id, error);
      return;
    }
    held.set(id, slot);
    next?.(message, extra);
    // Still held: the SDK runs a handler for it. Freed when the SDK stops that handler without an
    // answer (a cancellation it acts on; one it ignores, such as of id 0, leaves the call running).
    if (held.get(id) === slot) {
      signalOf(id)?.addEventListener('abort', () => release(id, slot), { once: true });
    }
  };

  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    const outgoing = message as { id?: unknown; result?: unknown; error?: unknown };
    const id = requestIdOf(outgoing.id);
    if (id !== undefined && (outgoing.result !== undefined || outgoing.error !== undefined)) {
      if (!refusals.has(message)) release(id);
    }
    return send(message, options);
  };

  const previousOnClose = transport.onclose;
  transport.onclose = () => {
    for (const slot of held.values()) slot();
    held.clear();
    previousOnClose?.();
  };
}
