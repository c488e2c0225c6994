// Resumes an MCP SSE stream whose MCP session lives in another process (another replica, or this
// one before a restart): replays the stored messages after Last-Event-ID from the durable log,
// then follows the log until the stream's end (its response; a batch's end marker after all of
// them), the client leaves or it goes idle.
// Also serves a resumed stream that is over (answered or cancelled) on the process holding it.
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import {
  isSentMessage,
  isStreamEnd,
  STANDALONE_STREAM_ID,
  type StreamEventLog,
  type StreamOwner,
} from './stream-event-log.ts';

export interface FollowStreamOptions {
  log: StreamEventLog;
  owner: StreamOwner;
  streamId: string;
  /** The client's Last-Event-ID (already checked to belong to `owner` and `streamId`). */
  afterEventId: string;
  /** How often the log is read for new messages while none arrive. */
  pollMs: number;
  /** The follow ends after this long without a new message (the client may resume again). */
  idleMs: number;
  /**
   * Nothing more will be stored on the stream (its requests were answered or cancelled): end once
   * what is stored has been replayed, without waiting for more.
   */
  untilLogEnd?: boolean;
  /** SSE comment interval that keeps proxies from closing a quiet stream; 0 = none. */
  keepAliveMs: number;
  /** Aborted when the server shuts down. */
  signal: AbortSignal;
  onError?: (error: unknown) => void;
}

/** Messages read per query while catching up. */
const FOLLOW_PAGE = 100;

/**
 * A response ends a request stream of one request (protocol 2025-06-18 and later carry one per
 * POST); a batch's (2025-03-26) ends at its end marker.
 */
export function isResponse(message: JSONRPCMessage): boolean {
  return 'id' in message && ('result' in message || 'error' in message) && !('method' in message);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** The SSE body of a resumed stream, in the same wire format as the SDK's own streams. */
export function createFollowStream(options: FollowStreamOptions): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const stop = new AbortController();
  const abortOnShutdown = () => stop.abort();
  options.signal.addEventListener('abort', abortOnShutdown, { once: true });
  let keepAlive: NodeJS.Timeout | undefined;

  function finish(controller: ReadableStreamDefaultController<Uint8Array>): void {
    clearInterval(keepAlive);
    options.signal.removeEventListener('abort', abortOnShutdown);
    try {
      controller.close();
    } catch {
      // Already closed or cancelled by the client.
    }
  }

  /** Whether the stream carries a batch: read once, when its first response is met. */
  let batch: Promise<boolean> | undefined;

  /**
   * Whether `message` is the last one of the stream: its end marker (cancelled: no response will
   * come; a batch answered), or the response of a stream of one request.
   */
  async function endsStream(message: JSONRPCMessage): Promise<boolean> {
    if (options.streamId === STANDALONE_STREAM_ID) return false;
    if (isStreamEnd(message)) return true;
    if (!isResponse(message)) return false;
    batch ??= options.log.isBatchStream(options.owner, options.streamId);
    return !(await batch);
  }

  async function follow(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    let cursor = options.afterEventId;
    let lastActivity = Date.now();
    // Resumed from the last message itself (a client that got an error response resumes after it):
    // nothing comes after it.
    const resumedFrom = await options.log.readEvent(options.owner, cursor);
    if (resumedFrom !== undefined && (await endsStream(resumedFrom.message))) return;
    while (!stop.signal.aborted) {
      const page = await options.log.readAfter(options.owner, options.streamId, cursor, FOLLOW_PAGE);
      if (stop.signal.aborted) return;
      for (const event of page) {
        cursor = event.id;
        if (isSentMessage(event.message)) {
          controller.enqueue(
            encoder.encode(`event: message\nid: ${event.id}\ndata: ${JSON.stringify(event.message)}\n\n`),
          );
        }
        if (await endsStream(event.message)) return;
      }
      if (options.untilLogEnd === true && page.length < FOLLOW_PAGE) return;
      if (page.length > 0) lastActivity = Date.now();
      else if (Date.now() - lastActivity >= options.idleMs) return;
      if (page.length < FOLLOW_PAGE) await sleep(options.pollMs, stop.signal);
    }
  }

  return new ReadableStream<Uint8Array>({
    start(controller) {
      // A comment first, so the response headers go out at once even when nothing is pending.
      controller.enqueue(encoder.encode(': resumed\n\n'));
      if (options.keepAliveMs > 0) {
        keepAlive = setInterval(() => {
          try {
            controller.enqueue(encoder.encode(': keepalive\n\n'));
          } catch {
            clearInterval(keepAlive);
          }
        }, options.keepAliveMs);
        keepAlive.unref();
      }
      follow(controller)
        .catch((error: unknown) => options.onError?.(error))
        .finally(() => finish(controller));
    },
    cancel() {
      stop.abort();
      clearInterval(keepAlive);
      options.signal.removeEventListener('abort', abortOnShutdown);
    },
  });
}
