// The body of an MCP event stream with a bound on what its client has not read yet. The SDK writes
// every message of a stream (notifications, keep-alives, responses) into its web stream without
// waiting for the client; piped as it is, a client that keeps the connection open but never reads
// would have the server queue all of that in memory for as long as the MCP session lives.

import { PassThrough, type Readable } from 'node:stream';

/**
 * Bytes a stream may hold for its client before the next message ends it. Why 8 MiB: well above
 * the largest single message (a tool result of up to a million characters), so a client that is
 * merely slow while it reads one is never cut off, and small next to a process's memory. A dropped
 * stream is resumed like any other, with Last-Event-ID.
 */
export const MAX_UNREAD_STREAM_BYTES = 8 * 1024 * 1024;

/**
 * `source` as a Node stream that always reads `source` at once and counts what waits for the
 * client: when a message arrives while more than `maxUnreadBytes` still wait, the stream is
 * destroyed with an error (the HTTP layer then closes the connection) and `source` is cancelled.
 */
export function readWithinUnreadLimit(
  source: ReadableStream<Uint8Array>,
  maxUnreadBytes: number = MAX_UNREAD_STREAM_BYTES,
): Readable {
  const body = new PassThrough();
  const reader = source.getReader();
  let ended = false;
  body.once('close', () => {
    if (!ended) reader.cancel().catch(() => {});
  });
  const pump = async (): Promise<void> => {
    for (;;) {
      const next = await reader.read();
      if (body.destroyed) return;
      if (next.done) {
        ended = true;
        body.end();
        return;
      }
      const unread = body.writableLength + body.readableLength;
      if (unread > maxUnreadBytes) {
        body.destroy(
          new Error(`the client has not read ${unread} bytes of its MCP event stream; the stream is dropped`),
        );
        return;
      }
      body.write(next.value);
    }
  };
  pump().catch((error: unknown) => {
    body.destroy(error instanceof Error ? error : new Error(String(error)));
  });
  return body;
}
