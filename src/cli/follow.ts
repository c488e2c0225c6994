// Follows a session's events to its end over SSE, reconnecting with Last-Event-ID after drops,
// so `maos run --follow` and `maos logs -f` see every event exactly once and in order.
import type { EventDto, SessionDto } from '../http/dto.ts';
import { type ApiClient, FINAL_SESSION_STATUSES } from './client.ts';
import type { CliError } from './exit-codes.ts';
import {
  createOutage,
  DEFAULT_RETRY_FOR_MS,
  giveUpError,
  interruptedError,
  isTransient,
  requestedDelayMs,
  sleep,
} from './retry.ts';

export interface FollowOptions {
  /** Start after this seq; 0 = from the first event. */
  afterSeq?: number;
  signal?: AbortSignal;
  /** Called in order; a returned promise is awaited before the next event (e.g. a question asked). */
  onEvent: (event: EventDto) => unknown;
  /**
   * Called before each new attempt after a failed or dropped one (also when the very first request
   * failed), with the attempt number, the last seq delivered and why.
   */
  onReconnect?: (attempt: number, lastSeq: number, info: ReconnectInfo) => void;
  /**
   * Give up once the server has been unavailable this long (retry.ts; 0: fail at the first
   * failure). @defaultValue DEFAULT_RETRY_FOR_MS
   */
  retryForMs?: number;
  /** Passed to the stream; see StreamOptions. */
  idleTimeoutMs?: number;
}

/** Why a follower tries again. */
export interface ReconnectInfo {
  /** The failure; undefined when the server closed the stream before the session ended. */
  error?: CliError;
  /** Wait before the attempt. */
  delayMs: number;
  /** False while no stream was ever opened (the first request has not succeeded yet). */
  connected: boolean;
}

/** An open stream that lived this long counted as a recovered server even without events. */
const HEALTHY_STREAM_MS = 10_000;

/**
 * Streams every event of the session until it has ended and all its events were delivered; returns
 * the final session. Fails with INTERRUPTED (exit 130), without another request, when the signal
 * aborts. Every request, the first one included, is retried while the server is unavailable
 * (retry.ts); errors that will not go away (401, 403, 404, 400) fail at once.
 */
export async function followSession(
  client: ApiClient,
  sessionId: string,
  options: FollowOptions,
): Promise<SessionDto> {
  let lastSeq = options.afterSeq ?? 0;
  let connected = false;
  const outage = createOutage(options.retryForMs ?? DEFAULT_RETRY_FOR_MS);
  // Streams the server closes before the session ended (e.g. while it shuts down) are no outage,
  // but reopening them is backed off the same way.
  const quietCloses = createOutage(Number.POSITIVE_INFINITY);
  const deliver = async (event: EventDto) => {
    // Replays after a reconnect may overlap what was already shown; seq makes that exact.
    if (event.seq <= lastSeq) return;
    lastSeq = event.seq;
    await options.onEvent(event);
  };

  for (;;) {
    let delayMs: number;
    let reason: CliError | undefined;
    let progressed = false;
    let openedAt: number | undefined;
    try {
      for await (const event of client.streamEvents(sessionId, {
        afterSeq: lastSeq,
        signal: options.signal,
        idleTimeoutMs: options.idleTimeoutMs,
        onOpen: () => {
          connected = true;
          openedAt = Date.now();
        },
      })) {
        progressed = true;
        outage.recover();
        quietCloses.recover();
        await deliver(event);
      }
      // Stopped by the caller (Ctrl-C, an MCP unsubscribe): nobody reads a final state, so none is asked.
      if (options.signal?.aborted) throw interruptedError();
      // The server closes the stream after the session's final event; confirm, then drain any rest.
      const session = await client.getSession(sessionId);
      if (FINAL_SESSION_STATUSES.has(session.status)) {
        await drainEvents(client, sessionId, () => lastSeq, deliver);
        return session;
      }
      if (progressed) quietCloses.recover();
      delayMs = quietCloses.fail() ?? 0;
    } catch (error) {
      if (options.signal?.aborted) throw interruptedError();
      if (!isTransient(error)) throw error;
      // A stream that delivered events, or stayed open a while (keep-alives), ended an outage; one
      // that breaks right after opening is part of it (else a half-broken server is retried forever).
      if (openedAt !== undefined && Date.now() - openedAt >= HEALTHY_STREAM_MS) outage.recover();
      const delay = outage.fail(requestedDelayMs(error));
      if (delay === undefined) throw giveUpError(error, outage);
      delayMs = delay;
      reason = error;
    }
    options.onReconnect?.(Math.max(outage.failures, quietCloses.failures), lastSeq, {
      error: reason,
      delayMs,
      connected,
    });
    await sleep(delayMs, options.signal);
    if (options.signal?.aborted) throw interruptedError();
  }
}

/** Reads the remaining events through the JSON pages (after the stream already ended). */
async function drainEvents(
  client: ApiClient,
  sessionId: string,
  lastSeq: () => number,
  deliver: (event: EventDto) => unknown,
): Promise<void> {
  for (;;) {
    const page = await client.listEvents(sessionId, lastSeq());
    if (page.length === 0) return;
    const before = lastSeq();
    for (const event of page) await deliver(event);
    if (lastSeq() === before) return;
  }
}

/** Delivers every event after `afterSeq` recorded so far, page by page (`maos logs` without -f). */
export async function readAllEvents(
  client: ApiClient,
  sessionId: string,
  onEvent: (event: EventDto) => unknown,
  afterSeq = 0,
): Promise<void> {
  let lastSeq = afterSeq;
  await drainEvents(
    client,
    sessionId,
    () => lastSeq,
    async (event) => {
      if (event.seq <= lastSeq) return;
      lastSeq = event.seq;
      await onEvent(event);
    },
  );
}
