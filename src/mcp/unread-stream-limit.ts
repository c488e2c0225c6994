// The body of an MCP event stream with a bound on what its client has not read yet. The SDK writes
// every message of a stream (notifications, keep-alives, responses) into its web stream without
// waiting for the client; piped as it is, a client that keeps the connection open but never reads
// would have the server queue all of that in memory. A resumed stream's stored messages are read
// from the log only as this body asks for them (stream-follower.ts), and live ones beyond the
// read-ahead wait within a bound too (live-stream-limit.ts). (Such a client's connection is dropped
// by the rule both kinds of event stream share, src/http/stalled-client.ts.)

import { PassThrough, type Readable } from 'node:stream';

/**
 * Bytes read ahead for a client before the stream waits for it to take some. Why 8 MiB: well above
 * the largest single message (a tool result of up to a million characters), and small next to a
 * process's memory.
 */
export const MAX_UNREAD_STREAM_BYTES = 8 * 1024 * 1024;

/**
 * Largest piece handed on to the connection at a time. A write counts as taken by the client only
 * once all of it is (src/http/stalled-client.ts): a message of several megabytes in one write
 * would make a client that reads it slowly look stalled. In pieces of 64 KiB, what the client must
 * take to show progress is what the kernel needs before it takes more (a third of what it holds).
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
  const fail = (error: unknown): void => {
    body.destroy(error instanceof Error ? error : new Error(String(error)));
  };
  pump().catch(fail);
  // A source that fails while the pump waits for the client (live-stream-limit.ts drops a client
  // that fell behind) ends the body at once.
  reader.closed.catch(fail);
  return body;
}
