// Keeps the secrets MAOS sends to a provider out of the provider's error messages. Some gateways
// echo the key they were sent ("invalid key sk-…"); their message becomes the task's and session's
// error, shown to the tenant, put in events, logs and spans. The error body of an HTTP answer is
// redacted as it arrives, before the provider package reads it; an error the model call throws as
// it leaves the model; and an error reported inside a streamed answer where it is read: by the
// LLM client's attempt and the agent's model call, before either records it. Not by a stream of
// its own around every answer, which every part of every answer went through for the rare error.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { LanguageModelV4 } from '@ai-sdk/provider';
import { headOf } from '../../domain/text-cut.ts';

type Redact = (text: string) => string;

/**
 * The most of an error body read and kept (characters), and of each text of an error reported in a
 * streamed answer. Scanning for secrets takes about 50 ms per MiB: the whole of a body up to
 * maxResponseBytes (64 MiB), which a server a tenant points its credential at may send with every
 * error, held the event loop of every tenant for seconds. A provider's error message is a few
 * hundred bytes; the rest is cut.
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
 * error the provider reports inside a streamed one is redacted by redactModelErrors.
 */
export function redactErrorResponses(redact: Redact, base: typeof fetch): typeof fetch {
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
 * an Error's message, stack, response body (the provider packages make an APICallError of it) and
 * unreadable line (a JSONParseError's text), along its cause chain, changed in place (it was made
 * for this call); a plain report copied. Each text is cut at MAX_ERROR_BODY_CHARS before it is
 * scanned, as an error body is: a streamed answer is bounded only by maxResponseBytes, and one line
 * of it that cannot be read is held whole in the error's text, message and stack.
 */
function redactReportedError(error: unknown, redact: Redact): unknown {
  if (error instanceof Error) {
    let current: unknown = error;
    for (let depth = 0; depth < 5 && current instanceof Error; depth += 1) {
      redactField(current, 'message', redact);
      redactField(current, 'stack', redact);
      redactField(current, 'responseBody', redact);
      // A JSONParseError's: the line of the answer that could not be read.
      redactField(current, 'text', redact);
      current = current.cause;
    }
    return error;
  }
  if (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { message?: unknown }).message === 'string'
  ) {
    return {
      ...error,
      message: redact(headOf((error as { message: string }).message, MAX_ERROR_BODY_CHARS)),
    };
  }
  return error;
}

/**
 * Replaces a text field of `error` by its redacted text (cut at MAX_ERROR_BODY_CHARS), when that
 * differs. Only then: some errors' fields cannot be set (a DOMException's message is a getter), and
 * setting one that holds no secret would throw for nothing.
 */
function redactField(
  error: Error,
  field: 'message' | 'stack' | 'responseBody' | 'text',
  redact: Redact,
): void {
  const text = (error as unknown as Record<string, unknown>)[field];
  if (typeof text !== 'string') return;
  const redacted = redact(headOf(text, MAX_ERROR_BODY_CHARS));
  if (redacted === text) return;
  try {
    (error as unknown as Record<string, unknown>)[field] = redacted;
  } catch {
    // A getter without a setter: an own field of the error hides it.
    try {
      Object.defineProperty(error, field, { value: redacted, configurable: true, writable: true });
    } catch {
      // A frozen error: nothing of it can be changed.
    }
  }
}

/** The redactors of the models an LLM client attempt has called so far (its streams' secrets). */
const attemptRedactors = new AsyncLocalStorage<Set<Redact>>();

/**
 * Runs an LLM client attempt so that the errors of the answers it streams are redacted where they
 * are read: each model it calls (redactModelErrors) adds its redactor, and what the attempt throws
 * leaves it redacted by all of them (an error a provider reported inside the stream, which
 * `streamText` or the agent's model call throws as it was reported).
 */
export async function runRedactingStreamErrors<T>(run: () => Promise<T>): Promise<T> {
  const redactors = new Set<Redact>();
  try {
    return await attemptRedactors.run(redactors, run);
  } catch (error) {
    throw redactWithAll(redactors, error);
  }
}

/**
 * `error`, read from a model's answer stream inside an LLM client attempt (runRedactingStreamErrors),
 * with the secrets of every model the attempt called removed; unchanged outside an attempt, where
 * the model redacts the error parts of its streams itself.
 */
export function redactStreamError(error: unknown): unknown {
  const redactors = attemptRedactors.getStore();
  return redactors === undefined ? error : redactWithAll(redactors, error);
}

function redactWithAll(redactors: ReadonlySet<Redact>, error: unknown): unknown {
  let redacted = error;
  for (const redact of redactors) redacted = redactReportedError(redacted, redact);
  return redacted;
}

/**
 * `model` whose errors made from an answer the provider sent have the secrets `redact` knows
 * removed: an error thrown by the call (an HTTP error, or one the provider reports in its stream
 * before any output) at once; an error part of its stream (reported after output had begun, or a
 * line that could not be read) where the attempt reads it (runRedactingStreamErrors). Called
 * outside an attempt, its stream's error parts are redacted as they pass.
 */
export function redactModelErrors(model: LanguageModelV4, redact: Redact): LanguageModelV4 {
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
      const attempt = attemptRedactors.getStore();
      if (attempt !== undefined) {
        attempt.add(redact);
        return result;
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
