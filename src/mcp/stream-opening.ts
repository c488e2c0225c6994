// The first bytes of an MCP SSE response, sent as soon as it is handed out. Fastify writes the
// headers of a streamed body only with its first chunk, and the SDK writes none until it has a
// message (a priming event only for protocol 2025-11-25 with resumption on): a tool call that waits
// got no headers until its first message or keep-alive (`http.sseKeepAliveSeconds`), and a client
// with a shorter response timeout gave up on it.

/** The SSE comment that opens the stream; clients skip comments. */
const OPENING = new TextEncoder().encode(': open\n\n');

/** `body` with an SSE comment first, so that its response headers go out at once. */
export function openAtOnce(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(OPENING);
    },
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}
