// How the CLI's API client reports failures: a request that never got an answer (UnreachableError),
// an error answer of the server or of a proxy in front of it (ApiProblemError), a malformed token.
import { parseRetryAfter } from '../domain/http-date.ts';
import { CliError, EXIT, type ExitCode, exitCodeForStatus } from './exit-codes.ts';

/**
 * A token pasted with a line break (or another character an HTTP header cannot carry) would make
 * every request fail before it is sent: said as such, not as a server that cannot be reached.
 */
export function checkToken(token: string | undefined): void {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (token !== undefined && /[\u0000-\u0008\u000a-\u001f\u007f]|[^\u0000-\u00ff]/.test(token.trim())) {
    throw new CliError(
      'INVALID_TOKEN',
      'the token contains a line break or another character an HTTP header cannot carry (check --token, MAOS_TOKEN or the credential stored by maos login)',
      EXIT.USAGE,
    );
  }
}

/**
 * The token without a leading `Bearer ` (any case), which the CLI adds itself: a token copied with
 * it from a curl command or a header (`MAOS_TOKEN="Bearer maos_…"`) was sent as `Bearer Bearer
 * maos_…`, which the server refuses (400) without a word on why. No API key or JWT starts so.
 */
export function withoutBearerPrefix(token: string | undefined): string | undefined {
  if (token === undefined || !/^\s*bearer(\s|$)/i.test(token)) return token;
  const rest = token.replace(/^\s*bearer/i, '').trim();
  if (rest === '') {
    throw new CliError(
      'INVALID_TOKEN',
      'the token is only the word "Bearer": give the token itself (check --token, MAOS_TOKEN or what was given to maos login)',
      EXIT.USAGE,
    );
  }
  return rest;
}

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
]);

/** Certificate checks that fail the same way on every attempt: not retried, and said as such. */
const TLS_CERTIFICATE_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * A request that failed before any answer came. `refused` is true when the connection was refused:
 * then nothing reached the server, so even a non-idempotent request may be sent again.
 */
export class UnreachableError extends CliError {
  readonly refused: boolean;

  constructor(code: string, message: string, refused: boolean, retryable = true) {
    super(code, message, EXIT.UNREACHABLE, [], { retryable });
    this.refused = refused;
  }
}

export function toConnectionError(error: unknown, baseUrl: URL): CliError {
  const cause = (error as { cause?: { code?: string } } | undefined)?.cause;
  const code = cause?.code ?? (error as { code?: string } | undefined)?.code;
  const name = (error as Error | undefined)?.name;
  const where = baseUrl.href.replace(/\/$/, '');
  if (name === 'TimeoutError') {
    return new UnreachableError('TIMEOUT', `MAOS at ${where} did not answer in time`, false);
  }
  if (error instanceof TypeError && cause === undefined) {
    // fetch refused to build the request (e.g. an invalid header): nothing to do with the network.
    return new CliError('BAD_REQUEST', `the request could not be sent: ${error.message}`, EXIT.USAGE);
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') {
    // An https:// URL for a server that speaks plain HTTP: the TLS handshake reads an HTTP answer.
    const plain = new URL(baseUrl.href);
    plain.protocol = 'http:';
    return new UnreachableError(
      'UNREACHABLE',
      `cannot reach MAOS at ${where}: the TLS handshake failed (${code}), the server probably speaks plain HTTP — try --server ${plain.href.replace(/\/$/, '')}`,
      false,
      false,
    );
  }
  if (code !== undefined && TLS_CERTIFICATE_CODES.has(code)) {
    return new UnreachableError(
      'UNREACHABLE',
      `cannot reach MAOS at ${where}: its TLS certificate is not trusted (${code}) — give its CA certificate with NODE_EXTRA_CA_CERTS=<ca.pem>`,
      false,
      false,
    );
  }
  if (code === 'ENOTFOUND') {
    // No such host name: a typo in the URL, not a restart; retrying would only delay the answer.
    return new UnreachableError(
      'UNREACHABLE',
      `cannot reach MAOS at ${where}: no such host ${baseUrl.hostname} (ENOTFOUND) — check --server or MAOS_SERVER`,
      false,
      false,
    );
  }
  const reason = code && CONNECTION_ERROR_CODES.has(code) ? ` (${code})` : '';
  return new UnreachableError(
    'UNREACHABLE',
    `cannot reach MAOS at ${where}${reason} — is \`maos serve\` running? (set --server or MAOS_SERVER)`,
    code === 'ECONNREFUSED',
  );
}

/**
 * A redirect in answer to an API request (a proxy sending http:// to https://, a moved host): not
 * followed, since fetch would resend a POST as a GET (`maos run` would read the session list as its
 * new session) and drop the token on the way to another origin (a 401 for a valid token). Said
 * with the `--server` the redirect points to, when its target ends with the path asked for.
 */
export function toRedirectError(response: Response, url: URL, baseUrl: URL, method: string): CliError {
  const where = baseUrl.href.replace(/\/$/, '');
  const header = response.headers.get('location');
  let target: URL | undefined;
  try {
    target = header === null ? undefined : new URL(header, url);
  } catch {
    target = undefined;
  }
  const asked = url.href.slice(baseUrl.href.length).split('?')[0] ?? '';
  const targetPath = target ? `${target.origin}${target.pathname}` : '';
  const server =
    target && asked !== '' && targetPath.endsWith(asked) ? targetPath.slice(0, -asked.length) : undefined;
  const hint = server ? ` — use --server ${server.replace(/\/$/, '')}` : ' — check --server or MAOS_SERVER';
  return new CliError(
    'REDIRECTED',
    `MAOS at ${where} answered ${method} ${url.pathname} with a redirect (HTTP ${response.status}) to ${target?.href ?? 'nowhere'}, which is not followed${hint}`,
    EXIT.USAGE,
  );
}

/**
 * An error answer of the server: a CliError that also keeps the problem's machine-readable
 * `details` as sent, for callers that pass them on (the MCP server in remote mode).
 */
export class ApiProblemError extends CliError {
  /** The problem's `details`; undefined when it had none. */
  readonly problemDetails: unknown;
  /** The HTTP status of the answer. */
  readonly status: number;
  /** The wait the server asked for in its Retry-After header, in ms. */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: string,
    message: string,
    exitCode: ExitCode,
    details: string[],
    options: { retryable: boolean; problemDetails: unknown; status: number; retryAfterMs?: number },
  ) {
    super(code, message, exitCode, details, { retryable: options.retryable });
    this.problemDetails = options.problemDetails;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * A server older than this client refuses the newest-first event read as an unknown `order`
 * parameter: said so, instead of a bare validation error about a parameter the user never typed.
 */
export function explainOlderServer(error: unknown): unknown {
  if (!(error instanceof CliError) || error.code !== 'VALIDATION_FAILED') return error;
  if (!/\border\b/.test([error.message, ...error.details].join(' '))) return error;
  return new CliError(
    error.code,
    'The server cannot read events newest first: it is older than this client. Upgrade the server, or read the log from its start (maos logs without --tail).',
    error.exitCode,
    [error.message, ...error.details],
  );
}

/**
 * A 401 to a command that sent no token: the server wants credentials, and the message says where
 * the CLI takes them from; when `maos login` stored tokens for other servers only, it names them
 * (a login to one server, then a command that went to the default one).
 */
export function explainMissingToken(
  error: CliError,
  storedForOtherServers: readonly string[] = [],
): CliError {
  if (!(error instanceof ApiProblemError) || error.status !== 401) return error;
  const elsewhere =
    storedForOtherServers.length > 0
      ? `; \`maos login\` stored tokens for ${storedForOtherServers.join(', ')} only: name that server with --server or MAOS_SERVER`
      : '';
  return new ApiProblemError(
    error.code,
    `${error.message}: no token was given — pass --token, set MAOS_TOKEN or store one with \`maos login\` (an admin creates API keys with \`maos keys create\`)${elsewhere}`,
    error.exitCode,
    error.details,
    {
      retryable: error.retryable,
      problemDetails: error.problemDetails,
      status: error.status,
      ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
    },
  );
}

/**
 * Statuses of an answer that may change by itself: 502/503/504, a proxy without its backend or a
 * server starting or shutting down; 429, rate limited or over a quota (the request was not
 * processed; Retry-After says when to come back).
 */
const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/** True for an HTTP error status that trying again later may turn into an answer. */
export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status);
}

/** Turns a non-2xx response into a CliError carrying the problem's code and detail. */
export function toProblemError(response: Response, text: string): CliError {
  let problem: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object') problem = parsed as Record<string, unknown>;
  } catch {
    // Not JSON (e.g. a proxy's HTML page): fall back to the status line.
  }
  const retryable = isRetryableStatus(response.status);
  const code = typeof problem.code === 'string' ? problem.code : `HTTP_${response.status}`;
  const detail =
    (typeof problem.detail === 'string' && problem.detail) ||
    (typeof problem.title === 'string' && problem.title) ||
    describeBareStatus(response, response.status !== 429 && retryable);
  return new ApiProblemError(code, detail, exitCodeForStatus(response.status), describeDetails(problem), {
    retryable,
    problemDetails: problem.details,
    status: response.status,
    retryAfterMs: parseRetryAfter(response.headers.get('retry-after'), Date.now()) ?? undefined,
  });
}

/**
 * An error answer without a problem document (a proxy or load balancer answered, not MAOS): the
 * status, where it came from and, for 502/503/504, what it usually means.
 */
function describeBareStatus(response: Response, unavailable: boolean): string {
  const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  let where = '';
  try {
    where = ` from ${new URL(response.url).origin}`;
  } catch {
    // No URL on a synthetic response.
  }
  const hint = unavailable ? ' (no MAOS server ready behind it; try again shortly)' : '';
  return `HTTP ${status}${where}${hint}`;
}

/** Readable lines from a problem's `errors`/`details` list (validation issues). */
function describeDetails(problem: Record<string, unknown>): string[] {
  const list = problem.errors ?? problem.details ?? problem.issues;
  if (!Array.isArray(list)) return [];
  return list.slice(0, 50).map((item) => {
    if (typeof item === 'string') return item;
    if (item && typeof item === 'object') {
      const entry = item as Record<string, unknown>;
      const pointer = Array.isArray(entry.path) ? entry.path.join('.') : (entry.path ?? entry.pointer ?? '');
      const path = typeof entry.location === 'string' ? `${entry.location}${String(pointer)}` : pointer;
      const message = entry.message ?? entry.detail ?? JSON.stringify(entry);
      return path ? `${String(path)}: ${String(message)}` : String(message);
    }
    return String(item);
  });
}
