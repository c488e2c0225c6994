// The one rule for a client of an event stream (REST, src/http/sse.ts; MCP, src/mcp/http-transport.ts)
// that keeps its connection open and stops reading: its connection is dropped, so it no longer holds
// its stream (a capped REST slot, or the MCP session it keeps from idling out) and what waits for it.
import type { ServerResponse } from 'node:http';

/**
 * Keep-alive intervals (one minute at the default 15 s) in which a client with bytes waiting for it
 * takes none of them before its connection is dropped. It resumes with Last-Event-ID, so nothing is
 * lost. Progress is a write the kernel has taken whole, and the kernel takes more from a connection
 * whose buffers are full only once the client has read about a third of what they hold (over a
 * megabyte on Linux): a reader that takes that much within the limit is never dropped, one that
 * takes less may be. Writes must stay small against that (MCP streams hand messages on in pieces).
 */
export const STALLED_CLIENT_INTERVALS = 4;

export interface StalledClientWatchOptions {
  /** The stream's keep-alive interval: the client is dropped after STALLED_CLIENT_INTERVALS of them. */
  intervalMs: number;
  /** Called at each interval at which nothing waits for the client (a REST stream's keep-alive). */
  onIdle?: () => void;
  /**
   * Called once, with the bytes left unsent, just before the connection is dropped (log, metrics);
   * 'close' follows on `response`.
   */
  onStalled: (unsentBytes: number) => void;
}

/**
 * Watches the connection of `response`, every `intervalMs`, until the response has gone out or the
 * connection closed (also after the response ended, so a client that never takes its last bytes is
 * dropped too): with bytes waiting and no write taken by the kernel for STALLED_CLIENT_INTERVALS
 * intervals, the connection is destroyed. What the kernel still takes is not waiting, so a client
 * that stops reading a quiet stream is noticed only once its connection's buffers are full.
 */
export function dropWhenClientStalls(response: ServerResponse, options: StalledClientWatchOptions): void {
  const socket = response.socket;
  if (socket === null || socket.destroyed) return;
  // Bytes of the writes the kernel took whole: bytesWritten counts a write as soon as it is handed
  // on, writableLength until it is taken.
  const taken = (): number => socket.bytesWritten - socket.writableLength;
  let takenAtLastTick = taken();
  let quietTicks = 0;
  const watch = setInterval(() => {
    if (socket.destroyed) {
      clearInterval(watch);
      return;
    }
    const now = taken();
    const idle = response.writableLength === 0;
    if (idle || now !== takenAtLastTick) {
      takenAtLastTick = now;
      quietTicks = 0;
      if (idle) options.onIdle?.();
    } else if (++quietTicks >= STALLED_CLIENT_INTERVALS) {
      clearInterval(watch);
      options.onStalled(response.writableLength);
      socket.destroy();
    }
  }, options.intervalMs);
  watch.unref();
  const stopWatching = (): void => clearInterval(watch);
  response.once('finish', stopWatching);
  response.once('close', stopWatching);
}
