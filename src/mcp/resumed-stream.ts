// A stream resumed (GET with Last-Event-ID) on the process that holds its MCP session is registered
// anew by the SDK, which keeps it for the request's live messages and ends it only when it sends the
// response; what was stored before comes from the log at the client's pace (storedThenLive). When the response was already sent (stored while the client was away),
// nothing is ever sent on it again, and the resumed stream stayed open until the client left.
// A batch's stream (2025-03-26) carries several responses: it ends after the last one.
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { createSseParser } from '../cli/sse-reader.ts';
import { isResponse } from './stream-follower.ts';

function carriesResponse(data: string): boolean {
  if (data.trim() === '') return false;
  try {
    return isResponse(JSON.parse(data) as JSONRPCMessage);
  } catch {
    return false;
  }
}

/**
 * `body`, ended after a JSON-RPC response it carries (replayed or live) once `isOver()` says no
 * other request of the stream waits for its own (by default, after the first): a request's stream
 * has nothing to say after its response, as a stream resumed on another replica ends there too.
 * Ending it cancels the SDK's stream, which releases it. The standalone stream carries no responses.
 */
export function endAfterResponse(
  body: ReadableStream<Uint8Array>,
  isOver: () => boolean = () => true,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = createSseParser();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) {
        controller.close();
        return;
      }
      controller.enqueue(value);
      const frames = parser.push(decoder.decode(value, { stream: true }));
      if (frames.some((frame) => carriesResponse(frame.data)) && isOver()) {
        controller.close();
        await reader.cancel();
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

const FRAME_ID = /^event: [^\n]*\nid: ([1-9][0-9]*)\n/;

/**
 * The stored id of the message a chunk carries. Both sources of a resumed live stream write each
 * message as one chunk (the SDK's writeSSEEvent, createFollowStream) with `id:` on its second line.
 */
function storedIdOf(chunk: Uint8Array, decoder: TextDecoder): number | undefined {
  const match = FRAME_ID.exec(decoder.decode(chunk.subarray(0, 64)));
  return match === null ? undefined : Number(match[1]);
}

/**
 * A live stream resumed on the process holding its MCP session: `stored`, its messages after
 * Last-Event-ID read from the log at the client's pace (createFollowStream, up to what is stored),
 * then `live`, the SDK's stream, registered before `stored` was first read and without a replay of
 * its own. A message stored while the resume was registered may come on both: `live` skips those
 * `stored` carried (ids follow send order). Only the next chunk is read, when the reader asks.
 */
export function storedThenLive(
  stored: ReadableStream<Uint8Array>,
  live: ReadableStream<Uint8Array>,
): ReadableStream<Uint8Array> {
  const storedReader = stored.getReader();
  const liveReader = live.getReader();
  const decoder = new TextDecoder();
  let replaying = true;
  let lastStored = 0;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        for (;;) {
          const reader = replaying ? storedReader : liveReader;
          let read: ReadableStreamReadResult<Uint8Array>;
          try {
            read = await reader.read();
          } catch (error) {
            // The log could not be read: end the connection (the client resumes from what it got),
            // and release the SDK's stream, which would otherwise stay registered for nobody.
            await liveReader.cancel(error).catch(() => {});
            throw error;
          }
          const { value, done } = read;
          if (done) {
            if (!replaying) {
              controller.close();
              return;
            }
            replaying = false;
            continue;
          }
          const id = storedIdOf(value, decoder);
          if (replaying) {
            if (id !== undefined) lastStored = id;
          } else if (id !== undefined && id <= lastStored) {
            continue;
          }
          controller.enqueue(value);
          return;
        }
      },
      async cancel(reason) {
        await Promise.all([storedReader.cancel(reason), liveReader.cancel(reason)]);
      },
    },
    { highWaterMark: 0 },
  );
}
