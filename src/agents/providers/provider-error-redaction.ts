// Keeps the secrets MAOS sends to a provider out of the provider's error messages. Some gateways
// echo the key they were sent ("invalid key sk-…"); their message becomes the task's and session's
// error, shown to the tenant, put in events, logs and spans. The error body of an HTTP answer is
// redacted as it arrives, before the provider package reads it, and an error reported inside a
// streamed answer as the model hands it on, so nothing downstream sees the key.
import type { LanguageModel } from 'ai';
import type { ProviderConfig } from '../../config/llm-schema.ts';
import { collectSecretValues } from '../../config/secrets-in-config.ts';

/** The secrets of providers' configurations: API keys, header values, base URL query values. */
export function secretsOfProviders(providers: Readonly<Record<string, ProviderConfig>>): string[] {
  return collectSecretValues(providers);
}

/** The model interface the provider packages in use implement. */
type LanguageModelV4 = Extract<LanguageModel, { specificationVersion: 'v4' }>;

/**
 * The most of an error body read and kept (characters). Scanning for secrets takes about 50 ms per
 * MiB: the whole of a body up to maxResponseBytes (64 MiB), which a server a tenant points its
 * credential at may send with every error, held the event loop of every tenant for seconds. A
 * provider's error message is a few hundred bytes; the rest is cut.
 */
export const MAX_ERROR_BODY_CHARS = 256 * 1024;

/** The start of an error body, at most MAX_ERROR_BODY_CHARS characters; the rest is not read. */
async function readErrorBody(body: ReadableStream<Uint8Array>): Promise<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (text.length < MAX_ERROR_BODY_CHARS) {
      const { done, value } = await reader.read();
      if (done) return text + decoder.decode();
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return text.slice(0, MAX_ERROR_BODY_CHARS);
}

/**
 * `fetch` whose error responses (HTTP 400 and above) have the secrets `redact` knows removed from
 * their body (cut at MAX_ERROR_BODY_CHARS) and status text. Successful answers pass untouched: an
 * error the provider reports inside a streamed one is redacted by redactStreamErrors.
 */
export function redactErrorResponses(redact: (text: string) => string, base: typeof fetch): typeof fetch {
  return async (input, init) => {
    const response = await base(input, init);
    if (response.status < 400 || response.body === null) return response;
    const body = redact(await readErrorBody(response.body));
    const headers = new Headers(response.headers);
    // The body may now be shorter, and is no longer compressed (fetch decoded it).
    headers.delete('content-length');
    headers.delete('content-encoding');
    return new Response(body, {
      status: response.status,
      statusText: redact(response.statusText),
      headers,
    });
  };
}

/**
 * The error a provider reported inside a streamed answer, with the secrets `redact` knows removed:
 * an Error's message, stack and response body (the provider packages make an APICallError of it),
 * along its cause chain, changed in place (it was made for this call); a plain report copied.
 */
function redactReportedError(error: unknown, redact: (text: string) => string): unknown {
  if (error instanceof Error) {
    let current: unknown = error;
    for (let depth = 0; depth < 5 && current instanceof Error; depth += 1) {
      current.message = redact(current.message);
      if (current.stack !== undefined) current.stack = redact(current.stack);
      const withBody = current as { responseBody?: unknown };
      if (typeof withBody.responseBody === 'string') withBody.responseBody = redact(withBody.responseBody);
      current = current.cause;
    }
    return error;
  }
  if (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { message?: unknown }).message === 'string'
  ) {
    return { ...error, message: redact((error as { message: string }).message) };
  }
  return error;
}

/**
 * `model` whose errors made from an answer the provider sent (an error it reports inside a streamed
 * answer, e.g. an OpenAI chunk with `error`: thrown when it comes before any output, else an error
 * part of the stream) have the secrets `redact` knows removed.
 */
export function redactStreamErrors(
  model: LanguageModelV4,
  redact: (text: string) => string,
): LanguageModelV4 {
  return {
    specificationVersion: model.specificationVersion,
    provider: model.provider,
    modelId: model.modelId,
    supportedUrls: model.supportedUrls,
    doGenerate: async (options) => {
      try {
        return await model.doGenerate(options);
      } catch (error) {
        throw redactReportedError(error, redact);
      }
    },
    doStream: async (options) => {
      let result: Awaited<ReturnType<LanguageModelV4['doStream']>>;
      try {
        result = await model.doStream(options);
      } catch (error) {
        throw redactReportedError(error, redact);
      }
      return {
        ...result,
        stream: result.stream.pipeThrough(
          new TransformStream({
            transform(part, controller) {
              controller.enqueue(
                part.type === 'error' ? { ...part, error: redactReportedError(part.error, redact) } : part,
              );
            },
          }),
        ),
      };
    },
  };
}
