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
 * `fetch` whose response bodies fail with PROVIDER_ERROR once more than `maxBytes` were read, and
 * report each chunk to the timer of the LLM client attempt that fetches (when there is one). The
 * chunks of an answer that is not streamed (a planning round's JSON) are not reported: its model
 * call runs without the timer (runUnstreamed), so its whole body must come within `timeoutSeconds`.
 * `base` is looked up on each call (default: the global `fetch`).
 */
export function limitResponseBytes(maxBytes: number, base?: typeof fetch): typeof fetch {
  return async (input, init) => {
    const timer = currentCallTimer();
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
