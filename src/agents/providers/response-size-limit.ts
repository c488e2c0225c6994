// Bounds the bytes read from an LLM provider per call. A model server answers with as much as it
// likes: one that ignores `max_tokens` (a misbehaving server, or one a tenant points its provider
// credential at) could otherwise stream an answer until the process runs out of memory, for every
// tenant at once. Past the bound the call fails like any other provider error. The same pass over
// the body tells the attempt's timer when each chunk of a streamed answer came (call-timer.ts).
import { AppError } from '../../errors/app-error.ts';
import { currentCallTimer } from './call-timer.ts';

/**
 * Default bound. Why 64 MiB: a streamed answer costs far more bytes than its text (about 200 bytes
 * of JSON per token on OpenAI's wire), so a legitimate 128k-token answer stays well below it.
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** The response of a provider call grew past its bound (not retried: the server would do it again). */
export class ResponseTooLargeError extends AppError {
  constructor(maxBytes: number) {
    super('PROVIDER_ERROR', `the response exceeded ${maxBytes} bytes (providers.<name>.maxResponseBytes)`);
    this.name = 'ResponseTooLargeError';
  }
}

/**
 * Whether a provider request asks for a streamed answer (`"stream": true` in its JSON body, on
 * both wire formats). A body that cannot be read as JSON counts as streamed: its answer then keeps
 * the pause limit, as every answer had before non-streamed ones were told apart.
 */
function asksForStream(init: RequestInit | undefined): boolean {
  const body = init?.body;
  if (typeof body !== 'string') return true;
  try {
    const parsed = JSON.parse(body) as { stream?: unknown } | null;
    return typeof parsed !== 'object' || parsed === null || parsed.stream === true;
  } catch {
    return true;
  }
}

/**
 * `fetch` whose response bodies fail with PROVIDER_ERROR once more than `maxBytes` were read, and
 * report each chunk of a streamed answer to the timer of the LLM client attempt that fetches (when
 * there is one). The chunks of an answer that is not streamed (a planning round's JSON) are not
 * reported: its whole body must come within `timeoutSeconds`, so a server that trickles it byte by
 * byte is cut there rather than by `maxCallSeconds`. `base` is looked up on each call (default:
 * the global `fetch`).
 */
export function limitResponseBytes(maxBytes: number, base?: typeof fetch): typeof fetch {
  return async (input, init) => {
    const attemptTimer = currentCallTimer();
    const timer = attemptTimer !== undefined && asksForStream(init) ? attemptTimer : undefined;
    const response = await (base ?? globalThis.fetch)(input, init);
    if (response.body === null) return response;
    let read = 0;
    const counted = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          timer?.chunk();
          read += chunk.byteLength;
          if (read > maxBytes) {
            controller.error(new ResponseTooLargeError(maxBytes));
            return;
          }
          controller.enqueue(chunk);
        },
      }),
    );
    return new Response(counted, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}
