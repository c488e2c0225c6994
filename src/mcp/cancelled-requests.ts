// Requests in flight on an MCP Streamable HTTP session, and the end of the streams of cancelled ones.
// On notifications/cancelled the SDK stops the handler and drops its result, so no response is
// sent, as MCP asks. But a request's SSE stream only ends with its response: without one it stayed
// open, and a resume of it (Last-Event-ID) waited for a response that never comes.
// Also tells the durable log which streams carry a batch, and when a batch is answered: a resume
// of such a stream ends after its last response, not its first. A request counts as answered once
// its response is stored in the log, not when it is handed over: a resume meanwhile waits for it.
import type { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';

/** Requests in flight (and cancelled streams) remembered per MCP session; beyond this the oldest are forgotten. */
const MAX_REMEMBERED = 1000;

type RequestId = string | number;

function requestIdOf(value: unknown): RequestId | undefined {
  return typeof value === 'string' || typeof value === 'number' ? value : undefined;
}

/**
 * The SDK transport's own request-to-stream correlation (request id → the SSE stream its messages
 * go on), which it keeps until the stream's responses are all sent. The SDK (1.32.2) has no public
 * accessor for it: a request handler gets a closeSSEStream callback, the transport closes a stream
 * by request id, and the event store is told stream ids only, never which request a message is for.
 * Undefined when the SDK keeps it elsewhere (another version): cancelled streams are then still
 * ended, but resumes and the log are not told (cancelled-requests.test.ts checks it is there).
 */
function requestStreams(
  transport: WebStandardStreamableHTTPServerTransport,
): Map<unknown, unknown> | undefined {
  const mapping: unknown = Reflect.get(transport, '_requestToStreamMapping');
  return mapping instanceof Map ? mapping : undefined;
}

/** The SSE stream the SDK transport sends `id`'s messages on (see requestStreams). */
function streamOfRequest(
  transport: WebStandardStreamableHTTPServerTransport,
  id: RequestId,
): string | undefined {
  const streamId = requestStreams(transport)?.get(id);
  return typeof streamId === 'string' ? streamId : undefined;
}

/**
 * The SDK transport's responses held until every request of their stream is answered (request id →
 * its response), as requestStreams; undefined when the SDK keeps them elsewhere.
 */
function heldResponses(
  transport: WebStandardStreamableHTTPServerTransport,
): Map<unknown, unknown> | undefined {
  const responses: unknown = Reflect.get(transport, '_requestResponseMap');
  return responses instanceof Map ? responses : undefined;
}

/** The SDK transport's streams a client may resume (as requestStreams); undefined when kept elsewhere. */
function resumableStreams(transport: WebStandardStreamableHTTPServerTransport): Set<unknown> | undefined {
  const streams: unknown = Reflect.get(transport, '_resumableStreams');
  return streams instanceof Set ? streams : undefined;
}

/** Sets `key` in `map`, forgetting the oldest entry at MAX_REMEMBERED; returns the one forgotten. */
function remember<K, V>(map: Map<K, V>, key: K, value: V): [K, V] | undefined {
  let forgotten: [K, V] | undefined;
  if (map.size >= MAX_REMEMBERED) {
    const oldest = map.keys().next().value as K;
    forgotten = [oldest, map.get(oldest) as V];
    map.delete(oldest);
  }
  map.set(key, value);
  return forgotten;
}

export interface RequestTracker {
  /**
   * True when nothing more will be sent on request stream `streamId`: none of its requests waits
   * for its response any more (answered or cancelled). Undefined when unsure.
   */
  isStreamOver(streamId: string): boolean | undefined;
  /** Ends `streamId` again if its requests were cancelled: a resume has just registered it anew. */
  endIfCancelled(streamId: string): void;
  /**
   * The SSE stream request `id`'s messages go on, as the SDK mapped it when the request came in
   * (also once it is answered and the SDK forgot it). Undefined when unknown.
   */
  streamOf(id: RequestId): string | undefined;
  /** The streams with a request that was neither answered nor cancelled (yet), each once. */
  unansweredStreams(): string[];
}

export interface TrackRequestsOptions {
  /** Told once the stream of cancelled requests was ended, for the durable log to record it. */
  onStreamCancelled?: (streamId: string) => void;
  /**
   * Told when a stream carries several requests (a JSON-RPC batch), before the first of them is
   * handled, so it is recorded before any of their messages.
   */
  onBatchStream?: (streamId: string) => void;
  /** Told once every request of a batch stream was answered (none cancelled), after the last answer. */
  onBatchAnswered?: (streamId: string) => void;
}

/**
 * Watches `transport` (after the MCP server connected to it): a `notifications/cancelled` for a
 * request in flight ends that request's SSE stream without a response (the SDK's closeSSEStream),
 * once no other request of the same POST (a 2025-03-26 batch) still waits for its own.
 */
export function trackRequests(
  transport: WebStandardStreamableHTTPServerTransport,
  options: TrackRequestsOptions = {},
): RequestTracker {
  /** Requests received and not yet answered or cancelled, oldest first. */
  const pending = new Map<RequestId, true>();
  /**
   * Requests whose response is being sent: no longer cancellable, but the SDK stores the response
   * in the log before it writes it, and a resume in between must wait for it rather than be served
   * from a log that does not hold it yet. Each leaves once its send is done.
   */
  const answering = new Set<RequestId>();
  /** Streams with a cancelled request, and that request (the SDK closes a stream by request id). */
  const cancelledOn = new Map<string, RequestId>();
  /** Streams that carry a batch. */
  const batches = new Map<string, true>();
  /** Each request's stream, as mapped when it came in (a client may reuse an id later: the last). */
  const streamsOfRequests = new Map<RequestId, string>();

  /** Whether `streamId` carries several requests; the SDK maps all of a POST's before handling one. */
  function carriesBatch(streamId: string): boolean {
    const mapping = requestStreams(transport);
    if (mapping === undefined) return false;
    let requests = 0;
    for (const mapped of mapping.values()) if (mapped === streamId) requests += 1;
    return requests > 1;
  }

  function awaitsResponse(streamId: string): boolean {
    for (const id of [...pending.keys(), ...answering]) {
      if (streamOfRequest(transport, id) === streamId) return true;
    }
    return false;
  }

  /**
   * Drops what the SDK still holds of `streamId` and of its requests that wait for nothing
   * (cancelled, or answered in a batch with a cancelled one): it forgets a stream's requests only once each has its
   * response, which a cancelled one never gets, so it kept every cancelled request of the MCP session
   * (and the other answers of its batch) for as long as the session lived, and read them all at
   * every response. Done for the oldest cancelled stream as a newer one takes its place in
   * `cancelledOn`: a stream just ended may still be resumed and end again (endIfCancelled).
   */
  function forgetCancelledStream(streamId: string): void {
    const mapping = requestStreams(transport);
    if (mapping === undefined) return;
    const responses = heldResponses(transport);
    let live = false;
    for (const [id, mapped] of [...mapping]) {
      if (mapped !== streamId) continue;
      const requestId = requestIdOf(id);
      if (requestId !== undefined && (pending.has(requestId) || answering.has(requestId))) {
        live = true;
        continue;
      }
      mapping.delete(id);
      responses?.delete(id);
    }
    // Its stream too, which the SDK marks resumable once a message with an id went out on it.
    if (!live) resumableStreams(transport)?.delete(streamId);
  }

  function endCancelled(streamId: string, id: RequestId): void {
    transport.closeSSEStream(id);
    options.onStreamCancelled?.(streamId);
  }

  const deliver = transport.onmessage;
  transport.onmessage = (message, extra) => {
    const incoming = message as { id?: unknown; method?: unknown; params?: { requestId?: unknown } };
    const id = requestIdOf(incoming.id);
    if (id !== undefined && typeof incoming.method === 'string') {
      remember(pending, id, true);
      const streamId = streamOfRequest(transport, id);
      streamsOfRequests.delete(id);
      if (streamId !== undefined) remember(streamsOfRequests, id, streamId);
      if (streamId !== undefined && !batches.has(streamId) && carriesBatch(streamId)) {
        remember(batches, streamId, true);
        options.onBatchStream?.(streamId);
      }
    }
    deliver?.(message, extra);
    if (incoming.method !== 'notifications/cancelled') return;
    const cancelled = requestIdOf(incoming.params?.requestId);
    // Unknown, already answered or already cancelled: nothing to end (MCP says to ignore it).
    if (cancelled === undefined || !pending.delete(cancelled)) return;
    const streamId = streamOfRequest(transport, cancelled);
    if (streamId === undefined) {
      transport.closeSSEStream(cancelled);
      return;
    }
    cancelledOn.delete(streamId);
    const forgotten = remember(cancelledOn, streamId, cancelled);
    if (forgotten !== undefined) forgetCancelledStream(forgotten[0]);
    if (!awaitsResponse(streamId)) endCancelled(streamId, cancelled);
  };

  const send = transport.send.bind(transport);
  transport.send = (message, sendOptions) => {
    const outgoing = message as { id?: unknown; result?: unknown; error?: unknown };
    const id = requestIdOf(outgoing.id);
    if (id === undefined || (outgoing.result === undefined && outgoing.error === undefined)) {
      return send(message, sendOptions);
    }
    pending.delete(id);
    answering.add(id);
    // Read before sending: the SDK forgets the correlation once the stream's responses are all sent.
    const streamId = streamOfRequest(transport, id);
    const sent = send(message, sendOptions).finally(() => answering.delete(id));
    return sent.then(() => {
      if (streamId === undefined || !(cancelledOn.has(streamId) || batches.has(streamId))) return;
      if (awaitsResponse(streamId)) return;
      const batch = batches.delete(streamId);
      const cancelled = cancelledOn.get(streamId);
      // The last answer of a batch whose other requests were cancelled: the SDK still waits for
      // their responses, so the stream is ended here.
      if (cancelled !== undefined) endCancelled(streamId, cancelled);
      else if (batch) options.onBatchAnswered?.(streamId);
    });
  };

  return {
    isStreamOver(streamId) {
      // Without the SDK's correlation nothing is known: the stream may still get its response.
      if (requestStreams(transport) === undefined) return undefined;
      return !awaitsResponse(streamId);
    },
    endIfCancelled(streamId) {
      const cancelled = cancelledOn.get(streamId);
      if (cancelled !== undefined && !awaitsResponse(streamId)) transport.closeSSEStream(cancelled);
    },
    streamOf(id) {
      return streamsOfRequests.get(id);
    },
    unansweredStreams() {
      const streams = new Set<string>();
      for (const id of pending.keys()) {
        const streamId = streamsOfRequests.get(id) ?? streamOfRequest(transport, id);
        if (streamId !== undefined) streams.add(streamId);
      }
      return [...streams];
    },
  };
}
