// Resumes an MCP SSE stream whose MCP session lives in another process (another replica, or this
// one before a restart): replays the stored messages after Last-Event-ID from the durable log,
// then follows the log until the stream's end (its response; a batch's end marker after all of
// them), the client leaves or it goes idle.
// Also serves, on the process holding the session, a resumed stream that is over (answered or
// cancelled), and the stored part of a live stream its client reads at its own pace
// (live-stream-limit.ts).
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import {
  isSentMessage,
  isStreamEnd,
  STANDALONE_STREAM_ID,
  type StoredStreamEvent,
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
   * End once what is stored has been replayed, without waiting for more: nothing more will be
   * stored on the stream (its requests were answered or cancelled), or the caller goes on with the
   * live messages (liveWithinLimit).
   */
  untilLogEnd?: boolean;
  /** SSE comment interval that keeps proxies from closing a quiet stream; 0 = none. */
  keepAliveMs: number;
  /** Aborted when the server shuts down. */
  signal: AbortSignal;
  onError?: (error: unknown) => void;
  /**
   * A failed read of the log errors the stream instead of ending it: for a caller that goes on
   * after it (liveWithinLimit), an end would skip what was not read.
   */
  failOnError?: boolean;
  /**
   * Fail with PrunedMessagesError instead of skipping messages the log pruned before they were
   * read: the first message read must be `firstEventId` when given (the first one the reader
   * lacks); every message read must then have the position in its stream (`seq`) right after the
   * one read before it, starting from `afterEventId`'s. For messages stored without a position
   * (before migration 0028), as the log prunes a stream's oldest first: `afterEventId` must still be
   * stored after the first read, then the last message read after each read of the next ones (once
   * found stored at the log's end, not while it polls there: it may age out meanwhile).
   */
  gapless?: { firstEventId?: string };
}

/** Messages a reader of the log lacks were pruned from it before it could read them. */
export class PrunedMessagesError extends Error {
  constructor(streamId: string, afterEventId: string) {
    super(
      `messages of MCP stream ${streamId} after event ${afterEventId} were pruned from the log before they were read`,
    );
    this.name = 'PrunedMessagesError';
  }
}

/** Messages read per query while catching up. */
const FOLLOW_PAGE = 100;

/**
 * Stored bytes read per query at most (a single larger message is read alone). The next page is
 * read only once the client's connection has taken what the last one left waiting beyond the
 * stream's read-ahead (src/mcp/unread-stream-limit.ts): a resumed stream holds that read-ahead and
 * about one page, however much is stored for it.
 */
export const FOLLOW_PAGE_BYTES = 1024 * 1024;

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
    // The standalone stream ends only where its session was closed (CLOSED_STREAM_END).
    if (isStreamEnd(message)) return true;
    if (options.streamId === STANDALONE_STREAM_ID || !isResponse(message)) return false;
    batch ??= options.log.isBatchStream(options.owner, options.streamId);
    return !(await batch);
  }

  let cursor = options.afterEventId;
  // Monotonic: a step of the wall clock (NTP, a resumed VM) is no time without a message.
  let lastActivity = performance.now();
  let started = false;
  /** gapless: the first message still to be read, by id. */
  let expected = options.gapless?.firstEventId;
  /** gapless: a stored message that must still be stored after the next read (none for '0'). */
  let anchor = options.gapless !== undefined && expected === undefined ? options.afterEventId : undefined;
  /** gapless: the anchor was found stored at the log's end, and every read since found nothing. */
  let idleAtEnd = false;
  /** gapless: the position in the stream of the message at `cursor`, when stored with one. */
  let cursorSeq: number | undefined;

  /**
   * gapless: fails when `page`, read after `cursor`, lacks pruned messages. Messages stored with
   * their position show it as a gap in the numbers, however fast they were stored and pruned. For
   * those stored without one, the log prunes a stream oldest first: while the anchor is still
   * stored, nothing after it was pruned.
   */
  async function checkNoGap(page: readonly StoredStreamEvent[]): Promise<void> {
    if (options.gapless === undefined) return;
    const from = cursor;
    /** Where the page's numbering must follow on from `cursorSeq`. */
    let numberedFrom = 0;
    if (expected !== undefined) {
      const wanted = Number(expected);
      const next = page.findIndex((event) => Number(event.id) >= wanted);
      // Ended without it, or read past it: it was pruned.
      if (next === -1 ? page.length === 0 : Number(page[next]!.id) !== wanted) {
        throw new PrunedMessagesError(options.streamId, from);
      }
      if (next === -1) return;
      expected = undefined;
      // The reader has what comes before the expected one: its numbering starts there.
      cursorSeq = undefined;
      numberedFrom = next;
    } else if (page.length > 0 && cursorSeq !== undefined && page[0]!.seq !== undefined) {
      // Numbered: checked below, also at the log's end, where a quiet stream's anchor may age out
      // (mcp.replayRetentionSeconds) though nothing after it was missed.
    } else if (idleAtEnd) {
      // Not numbered (stored before migration 0028). Read every pollMs since the anchor was last
      // found stored, finding nothing after it: what this read finds was stored since the last
      // one, and none of it was pruned meanwhile (unless more than the log keeps per stream came
      // within one poll and the retention job ran then). Not checked: a quiet stream's anchor ages
      // out though nothing after it was missed, which must not end the stream.
    } else if (anchor !== undefined && anchor !== '0') {
      if ((await options.log.findStream(options.owner, anchor)) === undefined) {
        throw new PrunedMessagesError(options.streamId, from);
      }
    }
    for (let i = numberedFrom; i < page.length; i += 1) {
      const { seq } = page[i]!;
      // A position further on than the next one: what lies between was pruned before it was read.
      // One not further on (a stream whose numbering started again: see MAX_REMEMBERED_STREAMS in
      // stream-event-log.ts) shows no gap.
      if (seq !== undefined && cursorSeq !== undefined && seq > cursorSeq + 1) {
        throw new PrunedMessagesError(options.streamId, i === 0 ? from : page[i - 1]!.id);
      }
      cursorSeq = seq;
    }
    idleAtEnd = page.length === 0;
    // Markers (a batch's start is kept longer than its stream's messages) are no anchor.
    const lastSent = page.findLast((event) => isSentMessage(event.message));
    if (lastSent !== undefined) anchor = lastSent.id;
  }

  /**
   * Reads the log until it has handed on at least one message, waiting for new ones while there are
   * none; resolves to true once the stream is over (its end, idle, shutdown, or the client left).
   */
  async function readNext(controller: ReadableStreamDefaultController<Uint8Array>): Promise<boolean> {
    if (!started) {
      started = true;
      // Resumed from the last message itself (a client that got an error response resumes after
      // it): nothing comes after it.
      const resumedFrom = await options.log.readEvent(options.owner, cursor);
      if (resumedFrom !== undefined && (await endsStream(resumedFrom.message))) return true;
      // gapless: the next message read must have the next position (unknown when `cursor` is gone
      // already: the anchor check then fails the first read).
      if (expected === undefined) cursorSeq = resumedFrom?.seq;
    }
    while (!stop.signal.aborted) {
      const page = await options.log.readAfter(
        options.owner,
        options.streamId,
        cursor,
        FOLLOW_PAGE,
        FOLLOW_PAGE_BYTES,
      );
      await checkNoGap(page);
      if (page.length === 0) {
        if (options.untilLogEnd === true || performance.now() - lastActivity >= options.idleMs) return true;
        await sleep(options.pollMs, stop.signal);
        continue;
      }
      lastActivity = performance.now();
      let handedOn = false;
      for (const event of page) {
        if (stop.signal.aborted) return true;
        cursor = event.id;
        if (isSentMessage(event.message)) {
          controller.enqueue(
            encoder.encode(`event: message\nid: ${event.id}\ndata: ${JSON.stringify(event.message)}\n\n`),
          );
          handedOn = true;
        }
        if (await endsStream(event.message)) return true;
      }
      if (handedOn) return false;
    }
    return true;
  }

  return new ReadableStream<Uint8Array>(
    {
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
      },
      // Called only when the reader wants more and nothing waits (high-water mark 0): the client's
      // pace, through the read-ahead, drives the next read of the log.
      async pull(controller) {
        try {
          if (await readNext(controller)) finish(controller);
        } catch (error) {
          if (!stop.signal.aborted) options.onError?.(error);
          if (options.failOnError !== true || stop.signal.aborted) return finish(controller);
          clearInterval(keepAlive);
          options.signal.removeEventListener('abort', abortOnShutdown);
          controller.error(error);
        }
      },
      cancel() {
        stop.abort();
        clearInterval(keepAlive);
        options.signal.removeEventListener('abort', abortOnShutdown);
      },
    },
    { highWaterMark: 0 },
  );
}
