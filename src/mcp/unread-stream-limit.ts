// The body of an MCP event stream with a bound on what its client has not read yet, and the rule
// that drops a client that stopped reading. The SDK writes every message of a stream
// (notifications, keep-alives, responses, a replay) into its web stream without waiting for the
// client; piped as it is, a client that keeps the connection open but never reads would have the
// server queue all of that in memory, and hold the stream (so its MCP session) for good.

import type { ServerResponse } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { STALLED_CLIENT_INTERVALS } from '../http/sse.ts';

/**
 * Bytes read ahead for a client before the stream waits for it to take some. Why 8 MiB: well above
 * the largest single message (a tool result of up to a million characters), and small next to a
 * process's memory.
 */
export const MAX_UNREAD_STREAM_BYTES = 8 * 1024 * 1024;

/**
 * Largest piece handed on to the connection at a time. A write counts as taken by the client only
 * once all of it is (see dropWhenClientStalls): a message of several megabytes in one write would
 * make a client that reads it slowly look stalled. In pieces of 64 KiB, what the client must take
 * to show progress is what the kernel needs before it takes more (a third of its send buffer).
 */
export const STREAM_WRITE_BYTES = 64 * 1024;

export interface UnreadLimitOptions {
  /** Read ahead up to this many bytes the client has not taken. */
  maxUnreadBytes?: number;
}

/**
 * `source` as a Node stream in pieces of at most STREAM_WRITE_BYTES, that reads `source` ahead of
 * the client up to `maxUnreadBytes`, then only as the client takes what waits. The stream is
 * cancelled when the body is destroyed (the connection closed, e.g. by dropWhenClientStalls).
 */
export function readWithinUnreadLimit(
  source: ReadableStream<Uint8Array>,
  options: UnreadLimitOptions = {},
): Readable {
  const maxUnreadBytes = options.maxUnreadBytes ?? MAX_UNREAD_STREAM_BYTES;
  const body = new PassThrough();
  const reader = source.getReader();
  let ended = false;
  body.once('close', () => {
    if (!ended) reader.cancel().catch(() => {});
  });
  const unread = (): number => body.writableLength + body.readableLength;

  /** Resolves once what was written has been taken on (or the body is gone). */
  const drained = (): Promise<void> =>
    new Promise((resolve) => {
      const settle = (): void => {
        body.off('drain', settle);
        body.off('close', settle);
        resolve();
      };
      body.once('drain', settle);
      body.once('close', settle);
    });

  const pump = async (): Promise<void> => {
    for (;;) {
      // Past the limit the last write returned false: 'drain' follows once the client took it.
      if (unread() > maxUnreadBytes) await drained();
      if (body.destroyed) return;
      const next = await reader.read();
      if (body.destroyed) return;
      if (next.done) {
        ended = true;
        body.end();
        return;
      }
      const chunk = next.value;
      for (let at = 0; at < chunk.length; at += STREAM_WRITE_BYTES) {
        body.write(chunk.subarray(at, at + STREAM_WRITE_BYTES));
      }
    }
  };
  pump().catch((error: unknown) => {
    body.destroy(error instanceof Error ? error : new Error(String(error)));
  });
  return body;
}

export interface StallWatchOptions {
  /** The keep-alive interval: the client is dropped after STALLED_CLIENT_INTERVALS of them. */
  intervalMs: number;
  /** Called once, with the bytes left unsent, when the connection is dropped. */
  onStalled: (unsentBytes: number) => void;
}

/**
 * Drops the connection of `response` once its client took nothing of what waits for it for
 * STALLED_CLIENT_INTERVALS intervals: the rule of REST event streams (src/http/sse.ts), so a
 * client that stopped reading frees its stream (and lets its MCP session idle out) however little
 * waits for it. Progress is any write the socket has handed on to the kernel (which takes more once
 * the client has read some of what it holds), so a client that reads slowly but steadily is never
 * dropped. Watches until the response has gone out or its connection closed; the response's body is
 * then destroyed (Fastify does so when the response closes first).
 */
export function dropWhenClientStalls(response: ServerResponse, options: StallWatchOptions): void {
  const socket = response.socket;
  if (socket === null || socket.destroyed) return;
  // Bytes of the writes the kernel completed: handed on, minus what is in flight or queued.
  const taken = (): number => (socket.bytesWritten ?? 0) - socket.writableLength;
  let takenAtLastTick = taken();
  let quietTicks = 0;
  const watch = setInterval(() => {
    if (socket.destroyed) {
      clearInterval(watch);
      return;
    }
    const now = taken();
    if (response.writableLength === 0 || now !== takenAtLastTick) {
      takenAtLastTick = now;
      quietTicks = 0;
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
