// Follows a session's event stream over fetch (EventSource cannot send an Authorization header):
// parses the SSE frames, and on a dropped connection resumes after the last event seen with
// Last-Event-ID, so no event is lost or shown twice. Stops after `session.finished`.
import { failureOf, fetchWithToken } from './api.js';

/** Why these delays: a restarting server is back within seconds; a stream open for hours need not hammer it. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 10_000;
/**
 * A refusal's Retry-After (a 429 at the caller's or tenant's cap of open streams, a 503) is waited
 * for, as the server asks; why capped: a far one must not leave the page without events for long.
 */
export const RETRY_AFTER_MAX_MS = 15 * 60_000;
/**
 * Why bounded: a frame is one event (agent output lines are cut at 8 KiB by the server); a stream
 * sending a line or frame without end must not grow the tab's memory with it. A frame over this
 * size is dropped whole, and the parser goes on with the next one.
 */
export const MAX_FRAME_CHARS = 1024 * 1024;

/**
 * Splits SSE text into frames. Feed it chunks; it calls `onFrame({id, event, data})` per frame.
 * Comment lines (`: keep-alive`) are dropped, and so is a frame longer than `maxFrameChars`.
 */
export function createSseParser(onFrame, maxFrameChars = MAX_FRAME_CHARS) {
  let buffer = '';
  let frame = { id: null, event: 'message', data: [] };
  /** Characters of the frame so far; past the limit the frame is dropped at its end. */
  let frameChars = 0;
  let oversized = false;
  const dispatch = () => {
    if (frame.data.length > 0 && !oversized) {
      onFrame({ id: frame.id, event: frame.event, data: frame.data.join('\n') });
    }
    frame = { id: null, event: 'message', data: [] };
    frameChars = 0;
    oversized = false;
  };
  const line = (text) => {
    if (text === '') return dispatch();
    if (oversized) return;
    frameChars += text.length + 1;
    if (frameChars > maxFrameChars) {
      oversized = true;
      frame.data = [];
      return;
    }
    if (text.startsWith(':')) return;
    const colon = text.indexOf(':');
    const name = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (name === 'id') frame.id = value;
    else if (name === 'event') frame.event = value;
    else if (name === 'data') frame.data.push(value);
  };
  // A CR ending one chunk and the LF starting the next are one line break, not two.
  let skipLf = false;
  return {
    push(chunk) {
      const text = skipLf && chunk.startsWith('\n') ? chunk.slice(1) : chunk;
      skipLf = text.endsWith('\r');
      buffer += text;
      const lines = buffer.split(/\r\n|\r|\n/);
      // The last piece is an unfinished line (empty when the chunk ended with a line break).
      buffer = lines.pop() ?? '';
      for (const entry of lines) line(entry);
      // A line that alone passes the limit: its frame is dropped, so its text need not be kept.
      if (frameChars + buffer.length > maxFrameChars) {
        oversized = true;
        frame.data = [];
        buffer = '';
      }
    },
    /** Characters of an unfinished line held until its line break (at most the frame limit). */
    pending: () => buffer.length,
  };
}

/**
 * Follows `/v1/sessions/:id/events` from after `afterSeq`.
 * @param {string} sessionId
 * @param {{afterSeq?: number, onEvent: (event: {seq: number, type: string, data: Record<string, unknown>, createdAt: string}) => void, onState?: (state: 'live'|'reconnecting'|'ended'|'failed', error?: unknown) => void}} options
 * @returns {{close(): void}}
 */
export function followSessionEvents(sessionId, options) {
  const controller = new AbortController();
  let lastSeq = options.afterSeq ?? 0;
  let finished = false;
  /** The wait before the next try: doubled after each try, back to the first once a stream opens. */
  let delay = RETRY_FIRST_MS;
  const setState = (state, error) => options.onState?.(state, error);

  async function readOnce() {
    const headers = { accept: 'text/event-stream' };
    if (lastSeq > 0) headers['last-event-id'] = String(lastSeq);
    // With the token renewed when due (and once on a 401), like every API call of the console.
    const response = await fetchWithToken(`/v1/sessions/${encodeURIComponent(sessionId)}/events`, {
      headers,
      signal: controller.signal,
      cache: 'no-store',
    });
    if (!response.ok) throw await failureOf(response);
    // Open: a drop of this stream, however long it lived, is retried soon again, not after the
    // waits grown by the tries before it.
    delay = RETRY_FIRST_MS;
    setState('live');
    const parser = createSseParser((frame) => {
      let event;
      try {
        event = JSON.parse(frame.data);
      } catch {
        return;
      }
      // Replays never repeat: skip anything at or before what was already shown.
      if (typeof event?.seq !== 'number' || event.seq <= lastSeq) return;
      lastSeq = event.seq;
      if (event.type === 'session.finished') finished = true;
      options.onEvent(event);
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(value);
    }
  }

  (async () => {
    while (!controller.signal.aborted && !finished) {
      /** The refusal's Retry-After in ms, when longer than the next delay. */
      let wait = 0;
      try {
        await readOnce();
      } catch (error) {
        if (controller.signal.aborted) return;
        // A refusal (unknown session, no permission, signed out) will not change by retrying;
        // 429 (too many streams) and 5xx/network errors may.
        const status = error?.status;
        if (typeof status === 'number' && status >= 400 && status < 500 && status !== 429) {
          setState('failed', error);
          return;
        }
        const retryAfter = Number(error?.retryAfterMs);
        if (Number.isFinite(retryAfter)) wait = Math.min(retryAfter, RETRY_AFTER_MAX_MS);
        setState('reconnecting', error);
      }
      if (finished || controller.signal.aborted) break;
      setState('reconnecting');
      await new Promise((resolve) => setTimeout(resolve, Math.max(delay, wait)));
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
    if (finished) setState('ended');
  })();

  return {
    close: () => controller.abort(),
  };
}
