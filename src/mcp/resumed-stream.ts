// A stream resumed (GET with Last-Event-ID) on the process that holds its MCP session is registered
// anew by the SDK, which keeps it for the request's live messages and ends it only when it sends the
// response; what was stored before comes from the log at the client's pace (liveWithinLimit,
// live-stream-limit.ts). When the response was already sent (stored while the client was away),
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
