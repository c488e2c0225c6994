// Classifies what a provider call threw (retryable or not, Retry-After) and turns it into an
// AppError whose message a user can act on: which provider, what HTTP status, what to check.

import {
  APICallError,
  InvalidResponseDataError,
  JSONParseError,
  NoOutputGeneratedError,
  StreamProviderError,
} from 'ai';
import { parseHttpDate } from '../../domain/http-date.ts';
import { headOf } from '../../domain/text-cut.ts';
import { AppError, coerceError } from '../../errors/app-error.ts';
import { blockedPortReason, fetchBlockedPort, isBlockedPortFailure } from '../../errors/fetch-failure.ts';
import { ProviderTimeoutError } from './call-timer.ts';
import { ResponseTooLargeError } from './response-size-limit.ts';

/**
 * HTTP statuses worth another attempt: request timeout, too early, rate limited, and every 5xx
 * (529 is Anthropic's "overloaded"). Everything else (400, 401, 403, 404, 422) will fail again.
 */
const RETRYABLE_STATUSES = new Set([408, 425, 429]);

/** Network error codes that mean the connection, not the request, failed. */
const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** Longest provider text kept in a task error: enough to diagnose, short enough for a table cell. */
const MAX_PROVIDER_MESSAGE_CHARS = 400;

export type FailureKind =
  | 'auth'
  | 'bad_request'
  | 'not_found'
  | 'rate_limited'
  | 'server'
  | 'network'
  | 'timeout'
  | 'other';

/** What the retry loop needs to know about one failed call. */
export interface ClassifiedFailure {
  kind: FailureKind;
  retryable: boolean;
  status?: number;
  /** Delay the provider asked for (Retry-After / retry-after-ms), in milliseconds. */
  retryAfterMs?: number;
  /** The provider's own explanation, shortened. */
  detail: string;
}

/**
 * A streamed answer that ended before the provider finished it: no end-of-answer frame and no error
 * (a server or proxy that closed the response early). Retried like a reset mid-stream.
 */
export class StreamInterruptedError extends Error {
  constructor() {
    super('the answer ended before the provider finished it');
    this.name = 'StreamInterruptedError';
  }
}

/** The same, as the openai-compatible provider reports it (the others report an `interrupted` finish, or none). */
function isUnfinishedStream(error: unknown): boolean {
  return (
    (InvalidResponseDataError.isInstance(error) &&
      /stream ended without a finish reason/i.test(error.message)) ||
    // streamText's, when the provider package reported no finish at all (Anthropic's, for a stream
    // cut before its first text).
    (NoOutputGeneratedError.isInstance(error) && /stream ended without a finish chunk/i.test(error.message))
  );
}

/** Parses `retry-after-ms`, then `Retry-After` as seconds or an HTTP date; undefined when absent or invalid. */
export function parseRetryAfter(
  headers: Record<string, string> | undefined,
  now = Date.now(),
): number | undefined {
  if (!headers) return undefined;
  const lower = Object.fromEntries(Object.entries(headers).map(([key, value]) => [key.toLowerCase(), value]));
  // Digits only, as for Retry-After: Number() reads '' and '  ' as 0 and '0x10' as 16, which would
  // retry at once and hide the Retry-After next to it.
  const ms = lower['retry-after-ms']?.trim();
  if (ms !== undefined && /^\d+(\.\d+)?$/.test(ms)) return Number(ms);
  const raw = lower['retry-after']?.trim();
  if (!raw) return undefined;
  if (/^\d+(\.\d+)?$/.test(raw)) return Number(raw) * 1000;
  // Only an HTTP date (parseHttpDate): Date.parse reads "-1" or "in 5" as dates long past (a retry
  // at once, without backoff) and an asctime date in the server's own time zone.
  const date = parseHttpDate(raw, now);
  return date === null ? undefined : Math.max(0, date - now);
}

function shorten(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > MAX_PROVIDER_MESSAGE_CHARS
    ? `${headOf(oneLine, MAX_PROVIDER_MESSAGE_CHARS)}…`
    : oneLine;
}

function findNetworkCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth += 1) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code)) return code;
    current = current.cause;
  }
  return undefined;
}

/** The ResponseTooLargeError in `error`'s cause chain (the SDK wraps what the body stream threw). */
function findTooLarge(error: unknown): ResponseTooLargeError | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth += 1) {
    if (current instanceof ResponseTooLargeError) return current;
    current = current.cause;
  }
  return undefined;
}

function kindForStatus(status: number): FailureKind {
  if (status === 401 || status === 403) return 'auth';
  if (status === 404) return 'not_found';
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'server';
  if (status === 408) return 'timeout';
  return 'bad_request';
}

/**
 * An error the provider reported inside its stream once the answer had begun (Anthropic's
 * `event: error`, e.g. `overloaded_error`; an OpenAI chunk with `error`): the SDK hands it over as a
 * plain object with a message and, when the provider's error type tells it, a status (reportOf). Judged like
 * that HTTP status; without one, the answer broke off, as a reset mid-stream does.
 */
function classifyStreamError(error: unknown): ClassifiedFailure | undefined {
  if (typeof error !== 'object' || error === null || error instanceof Error) return undefined;
  const report = error as {
    message?: unknown;
    statusCode?: unknown;
    code?: unknown;
    type?: unknown;
    isRetryable?: unknown;
  };
  if (typeof report.message !== 'string') return undefined;
  const detail = shorten(report.message);
  // Its code or type first: the openai package sets a `statusCode` of its own, read from the type
  // before the code (an `invalid_api_key` of type `invalid_request_error` was a 400).
  const named = statusOfReport(report);
  const candidate = isErrorStatus(named)
    ? named
    : typeof report.statusCode === 'number'
      ? report.statusCode
      : named;
  if (typeof candidate !== 'number' || candidate < 400 || candidate > 599) {
    return { kind: 'server', retryable: true, detail };
  }
  return {
    kind: kindForStatus(candidate),
    retryable:
      !namesNoCredit(report) &&
      (RETRYABLE_STATUSES.has(candidate) || candidate >= 500 || report.isRetryable === true),
    status: candidate,
    detail,
  };
}

/**
 * The report of an error a provider reported inside its stream: as the provider package hands it
 * over (the agent's model call reads it so), or the fields `streamText` (the orchestrator's
 * synthesis) read from it into an AI_StreamProviderError. Anything else as it is.
 */
function reportOf(error: unknown): unknown {
  if (!StreamProviderError.isInstance(error)) return error;
  const { message, type, code, statusCode, isRetryable } = error;
  return { message, type, code, statusCode, isRetryable };
}

/**
 * OpenAI's `insufficient_quota`: the account has no credit left. A 429, but not one that passes
 * with time, as a rate limit does: another attempt is refused the same way.
 */
function namesNoCredit(report: { code?: unknown; type?: unknown }): boolean {
  return report.code === 'insufficient_quota' || report.type === 'insufficient_quota';
}

/**
 * Whether an HTTP error says the account has no credit: its early stream frame does, or its JSON
 * answer's `error` (OpenAI answers `429 {"error": {"code": "insufficient_quota"}}` before any stream).
 */
function answersNoCredit(
  error: APICallError,
  early: { code?: unknown; type?: unknown } | undefined,
): boolean {
  if (early !== undefined) return namesNoCredit(early);
  const body =
    typeof error.data === 'object' && error.data !== null ? (error.data as { error?: unknown }) : undefined;
  const reported = body?.error;
  return typeof reported === 'object' && reported !== null && namesNoCredit(reported);
}

/**
 * The HTTP status an error chunk of the OpenAI wire stands for (the Anthropic package maps its own
 * error types to one, as `statusCode`): its `code` when that is one, as a number (vLLM) or as text
 * (LiteLLM's `"429"`), else what its `code` or `type` name means in OpenAI's errors. An
 * `invalid_request_error` will fail again, as its HTTP 400 would; a type nobody names, or none,
 * gives none (the answer broke off: retried).
 */
function statusOfReport(report: { code?: unknown; type?: unknown }): number | undefined {
  const { code, type } = report;
  if (typeof code === 'number') return code;
  if (typeof code === 'string' && /^[45]\d\d$/.test(code)) return Number(code);
  const named = (name: unknown) =>
    typeof name === 'string' && Object.hasOwn(STATUS_OF_ERROR_NAME, name)
      ? STATUS_OF_ERROR_NAME[name]
      : undefined;
  return named(code) ?? named(type);
}

function isErrorStatus(status: number | undefined): status is number {
  return status !== undefined && status >= 400 && status <= 599;
}

/**
 * The error an OpenAI server reported in its stream before any output: the openai package throws
 * it as an HTTP error of the event stream, its frame as `data`, with a status it read from the
 * error's type before its code. Undefined for an HTTP error answer.
 */
function earlyStreamReport(error: APICallError): { code?: unknown; type?: unknown } | undefined {
  const contentType = Object.entries(error.responseHeaders ?? {}).find(
    ([name]) => name.toLowerCase() === 'content-type',
  )?.[1];
  if (!contentType?.toLowerCase().startsWith('text/event-stream')) return undefined;
  if (typeof error.data !== 'object' || error.data === null) return undefined;
  const frame = error.data as { error?: unknown; response?: { error?: unknown } };
  // The chunk's `error` (Chat Completions) or the failed response's (Responses API), or the frame.
  return [frame.error, frame.response?.error, frame].find(
    (candidate): candidate is { code?: unknown; type?: unknown } =>
      typeof candidate === 'object' && candidate !== null,
  );
}

/**
 * The HTTP status of such an early error, judged like one reported later (statusOfReport);
 * undefined when its frame names no status (the package's then stands).
 */
function statusOfEarlyStreamError(
  report: { code?: unknown; type?: unknown } | undefined,
): number | undefined {
  const status = report === undefined ? undefined : statusOfReport(report);
  return isErrorStatus(status) ? status : undefined;
}

/** OpenAI's error codes and types (and the same names elsewhere), with the HTTP status of each. */
const STATUS_OF_ERROR_NAME: Record<string, number> = {
  invalid_api_key: 401,
  invalid_request_error: 400,
  authentication_error: 401,
  permission_error: 403,
  not_found_error: 404,
  rate_limit_exceeded: 429,
  rate_limit_error: 429,
  insufficient_quota: 429,
  server_error: 500,
  api_error: 500,
  overloaded_error: 529,
};

/**
 * What the provider said in an HTTP error answer. The provider package reads its own error shape
 * (OpenAI's `{"error": {"message": …}}`, Anthropic's) into the message and `data`; a body of another
 * shape leaves it the status text ("Bad Request"), which loses the provider's reason. Then it is read
 * from the body (already redacted as it arrived, provider-error-redaction.ts): vLLM's flat
 * `{"object": "error", "message": …}`, `{"error": "…"}` (Ollama, LM Studio), `{"detail": …}`
 * (FastAPI-based servers, a text or its validation errors), or a body of plain text. An HTML page
 * (a proxy's) or JSON naming no message keeps the status text.
 */
function providerMessageOf(error: APICallError): string {
  if (error.data !== undefined) return error.message;
  const body = error.responseBody?.trim();
  if (!body) return error.message;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return body.startsWith('<') ? error.message : body;
  }
  return messageInBody(parsed, 0) ?? error.message;
}

/** The message a parsed error body names (providerMessageOf), looked for one level deep at most. */
function messageInBody(value: unknown, depth: number): string | undefined {
  if (typeof value === 'string') return value.trim() === '' ? undefined : value;
  if (typeof value !== 'object' || value === null || Array.isArray(value) || depth > 1) return undefined;
  const { message, error, detail } = value as { message?: unknown; error?: unknown; detail?: unknown };
  return (
    messageInBody(message, depth + 1) ??
    messageInBody(error, depth + 1) ??
    (Array.isArray(detail) ? validationErrors(detail) : messageInBody(detail, depth + 1))
  );
}

/** FastAPI's validation errors (`[{"loc": ["body", "x"], "msg": …}]`): "body.x: msg; …". */
function validationErrors(items: unknown[]): string | undefined {
  const said = items.flatMap((item) => {
    if (typeof item !== 'object' || item === null) return [];
    const { loc, msg } = item as { loc?: unknown; msg?: unknown };
    if (typeof msg !== 'string') return [];
    return [Array.isArray(loc) && loc.length > 0 ? `${loc.join('.')}: ${msg}` : msg];
  });
  return said.length === 0 ? undefined : said.join('; ');
}

function blockedPortFailure(error: unknown): ClassifiedFailure {
  const url = APICallError.isInstance(error) ? URL.parse(error.url) : null;
  const port = url === null ? undefined : fetchBlockedPort(url);
  return {
    kind: 'other',
    retryable: false,
    detail:
      url !== null && port !== undefined
        ? `${url.origin}: ${blockedPortReason(port)}`
        : 'the HTTP client refused the port of the URL for every request (a "bad port" of the fetch standard); use another port',
  };
}

/** Decides whether a failed call may be retried and what the provider said. */
export function classifyProviderError(error: unknown): ClassifiedFailure {
  const tooLarge = findTooLarge(error);
  if (tooLarge) return { kind: 'other', retryable: false, detail: tooLarge.message };
  if (error instanceof ProviderTimeoutError)
    return { kind: 'timeout', retryable: true, detail: error.message };
  if (error instanceof StreamInterruptedError || isUnfinishedStream(error)) {
    return { kind: 'network', retryable: true, detail: new StreamInterruptedError().message };
  }
  // A line of a streamed answer that is not JSON (cut, or mangled on the way): the provider's answer
  // is broken, not the request, and the same request is answered whole the next time, as after a
  // 5xx. Retried before any output and after some alike: the runtime then says that the answer
  // starts over. A line that is JSON of another shape (TypeValidationError) is not: a server that
  // speaks another format would answer so again.
  if (JSONParseError.isInstance(error)) {
    return {
      kind: 'server',
      retryable: true,
      detail: `a line of the streamed answer could not be read (not JSON): ${shorten(error.text)}`,
    };
  }
  // fetch refused the port itself, before any connection (the config refuses such a base URL, but a
  // redirect or a stored URL may still lead there): it will refuse it on every attempt.
  if (isBlockedPortFailure(error)) return blockedPortFailure(error);
  if (APICallError.isInstance(error)) {
    const early = earlyStreamReport(error);
    const status = statusOfEarlyStreamError(early) ?? error.statusCode;
    // No status: the connection failed. A 2xx status: the response broke off mid-stream.
    if (status === undefined || status < 400) {
      return { kind: 'network', retryable: true, detail: shorten(error.message) };
    }
    return {
      kind: kindForStatus(status),
      retryable: !answersNoCredit(error, early) && (RETRYABLE_STATUSES.has(status) || status >= 500),
      status,
      retryAfterMs: parseRetryAfter(error.responseHeaders),
      detail: shorten(providerMessageOf(error)),
    };
  }
  const reported = classifyStreamError(reportOf(error));
  if (reported) return reported;
  const code = findNetworkCode(error);
  if (code) return { kind: 'network', retryable: true, detail: code };
  // The HTTP client refused a URL with a user name or password: its message quotes the URL.
  if (error instanceof TypeError && /URL that includes credentials/i.test(error.message)) {
    return {
      kind: 'other',
      retryable: false,
      detail: 'the base URL holds a user name or password, which the HTTP client does not send',
    };
  }
  // The HTTP client refused a header before sending: its message quotes the value, often the key.
  if (error instanceof TypeError && /invalid header value/i.test(error.message)) {
    return {
      kind: 'other',
      retryable: false,
      detail:
        'a request header has an invalid value (a line break in the API key or in a configured header?)',
    };
  }
  return { kind: 'other', retryable: false, detail: shorten(coerceError(error).message) };
}

/** Where a failure happened, for the message. */
export interface FailureSite {
  provider: string;
  model: string;
  attempts: number;
  /** The call used the key (and maybe the base URL) the tenant stored, not the server's. */
  tenantCredential?: { ownBaseURL: boolean } | undefined;
}

/** The task-facing error for a call that failed for good. No stack traces, no request bodies. */
export function toProviderAppError(failure: ClassifiedFailure, site: FailureSite, cause?: unknown): AppError {
  const where = `provider '${site.provider}' (model ${site.model})`;
  const status = failure.status === undefined ? '' : ` (HTTP ${failure.status})`;
  const details = {
    provider: site.provider,
    model: site.model,
    status: failure.status,
    kind: failure.kind,
    attempts: site.attempts,
  };
  // A tenant's stored credential is fixed where it was stored, not in the server configuration.
  const stored = `this tenant stored for provider '${site.provider}' (PUT /v1/providers/${site.provider}/credentials)`;
  switch (failure.kind) {
    case 'auth':
      return new AppError(
        'PROVIDER_ERROR',
        `${where} rejected the credentials${status}: ${failure.detail}. Check ${site.tenantCredential ? `the API key ${stored}` : `providers.${site.provider}.apiKey`}.`,
        { details, cause },
      );
    case 'not_found':
      return new AppError(
        'PROVIDER_ERROR',
        `${where} answered not found${status}: ${failure.detail}. Check the model id and ${site.tenantCredential?.ownBaseURL ? `the base URL ${stored}` : `providers.${site.provider}.baseURL`}.`,
        { details, cause },
      );
    case 'bad_request':
      return new AppError('PROVIDER_ERROR', `${where} rejected the request${status}: ${failure.detail}`, {
        details,
        cause,
      });
    case 'timeout':
      return new AppError(
        'TIMEOUT',
        `${where} timed out after ${site.attempts} attempt(s): ${failure.detail}`,
        { details, cause },
      );
    case 'rate_limited':
    case 'server':
    case 'network':
      return new AppError(
        'PROVIDER_UNAVAILABLE',
        `${where} is unavailable after ${site.attempts} attempt(s)${status}: ${failure.detail}`,
        { details, cause },
      );
    default:
      return new AppError('PROVIDER_ERROR', `${where} failed: ${failure.detail}`, { details, cause });
  }
}
