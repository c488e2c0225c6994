// Follows a session's events to its end over SSE, reconnecting with Last-Event-ID after drops,
// so `maos run --follow` and `maos logs -f` see every event exactly once and in order.
import type { EventDto, SessionDto } from '../http/dto.ts';
import { type ApiClient, FINAL_SESSION_STATUSES } from './client.ts';
import { CliError, EXIT } from './exit-codes.ts';

export interface FollowOptions {
  /** Start after this seq; 0 = from the first event. */
  afterSeq?: number;
  signal?: AbortSignal;
  /** Called in order; a returned promise is awaited before the next event (e.g. a question asked). */
  onEvent: (event: EventDto) => unknown;
  /** Called before each reconnect attempt (after a drop), with the attempt number. */
  onReconnect?: (attempt: number, lastSeq: number) => void;
  /** Consecutive failed reconnects before giving up. @defaultValue 20 */
  maxReconnects?: number;
  /** Passed to the stream; see StreamOptions. */
  idleTimeoutMs?: number;
}

/** Backoff between reconnects: fast at first (a restart takes ~1 s), capped so a long outage polls gently. */
const RECONNECT_BASE_MS = 250;
const RECONNECT_MAX_MS = 5_000;

/**
 * Streams every event of the session until it has ended and all its events were delivered; returns
 * the final session. Returns early (with the latest session) when the signal aborts.
 */
export async function followSession(
  client: ApiClient,
  sessionId: string,
  options: FollowOptions,
): Promise<SessionDto> {
  let lastSeq = options.afterSeq ?? 0;
  let failures = 0;
  const maxReconnects = options.maxReconnects ?? 20;
  const deliver = async (event: EventDto) => {
    // Replays after a reconnect may overlap what was already shown; seq makes that exact.
    if (event.seq <= lastSeq) return;
    lastSeq = event.seq;
    await options.onEvent(event);
  };

  for (;;) {
    let progressed = false;
    try {
      for await (const event of client.streamEvents(sessionId, {
        afterSeq: lastSeq,
        signal: options.signal,
        idleTimeoutMs: options.idleTimeoutMs,
      })) {
        progressed = true;
        failures = 0;
        await deliver(event);
      }
      if (options.signal?.aborted) return await client.getSession(sessionId);
      // The server closes the stream after the session's final event; confirm, then drain any rest.
      const session = await client.getSession(sessionId);
      if (FINAL_SESSION_STATUSES.has(session.status)) {
        await drainEvents(client, sessionId, () => lastSeq, deliver);
        return session;
      }
      // Closed early without news (e.g. the server is restarting): back off like after a drop.
      if (!progressed) failures += 1;
    } catch (error) {
      if (options.signal?.aborted) throw abortError();
      if (!(error instanceof CliError) || !error.retryable) throw error;
      if (!progressed) failures += 1;
      if (failures > maxReconnects) throw error;
    }
    options.onReconnect?.(failures, lastSeq);
    await sleep(
      Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.max(0, failures - 1)),
      options.signal,
    );
    if (options.signal?.aborted) throw abortError();
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

function abortError(): CliError {
  return new CliError('INTERRUPTED', 'interrupted', EXIT.INTERRUPTED);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
