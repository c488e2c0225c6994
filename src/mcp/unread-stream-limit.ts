// The body of an MCP event stream with a bound on what its client has not read yet. The SDK writes
// every message of a stream (notifications, keep-alives, responses, a replay) into its web stream
// without waiting for the client; piped as it is, a client that keeps the connection open but never
// reads would have the server queue all of that in memory for as long as the MCP session lives.

import { PassThrough, type Readable } from 'node:stream';

/**
 * Bytes read ahead for a client before the stream waits for it to take some. Why 8 MiB: well above
 * the largest single message (a tool result of up to a million characters), and small next to a
 * process's memory.
 */
export const MAX_UNREAD_STREAM_BYTES = 8 * 1024 * 1024;

export interface UnreadLimitOptions {
  /** Read ahead up to this many bytes the client has not taken. */
  maxUnreadBytes?: number;
  /**
   * With more than `maxUnreadBytes` waiting, a client that takes none of them for this long is cut
   * off: the stream is destroyed with an error (the HTTP layer closes the connection) and `source`
   * cancelled. A client that reads, however slowly, is not.
   */
  stallMs: number;
}

/**
 * `source` as a Node stream that reads `source` ahead of the client up to `maxUnreadBytes`, then
 * only as the client takes what waits, and gives up on a client that takes nothing for `stallMs`.
 */
export function readWithinUnreadLimit(
  source: ReadableStream<Uint8Array>,
  options: UnreadLimitOptions,
): Readable {
  const maxUnreadBytes = options.maxUnreadBytes ?? MAX_UNREAD_STREAM_BYTES;
  const body = new PassThrough();
  const reader = source.getReader();
  let ended = false;
  body.once('close', () => {
    if (!ended) reader.cancel().catch(() => {});
  });
  const unread = (): number => body.writableLength + body.readableLength;

  /** Resolves true once the client took enough to read on, false when it took nothing for stallMs. */
  const clientTakes = (): Promise<boolean> =>
    new Promise((resolve) => {
      let last = unread();
      const settle = (taking: boolean): void => {
        clearInterval(check);
        body.off('drain', drained);
        body.off('close', closed);
        resolve(taking);
      };
      const drained = (): void => settle(true);
      const closed = (): void => settle(false);
      const check = setInterval(() => {
        const now = unread();
        if (now <= maxUnreadBytes) settle(true);
        else if (now >= last) settle(false);
        else last = now;
      }, options.stallMs);
      check.unref();
      body.once('drain', drained);
      body.once('close', closed);
    });

  const pump = async (): Promise<void> => {
    for (;;) {
      if (unread() > maxUnreadBytes && !(await clientTakes())) {
        body.destroy(
          new Error(
            `the client took none of the ${unread()} bytes waiting on its MCP event stream for ${options.stallMs} ms; the stream is dropped`,
          ),
        );
        return;
      }
      const next = await reader.read();
      if (body.destroyed) return;
      if (next.done) {
        ended = true;
        body.end();
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
