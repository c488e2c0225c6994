// The one error type of MAOS: a stable code, a category and an HTTP status per code.
// HTTP mapping, logging and counting happen in one place (http/plugins/error-handler.ts).

/** Who is at fault: the caller (user), MAOS itself (system) or something it depends on (upstream). */
export type ErrorCategory = 'user' | 'system' | 'upstream';

interface CodeSpec {
  readonly status: number;
  readonly category: ErrorCategory;
  readonly title: string;
  /**
   * The `Retry-After` of every error of this code whose thrower names no wait: a code that always
   * asks for a retry, whatever caused it.
   */
  readonly retryAfterSeconds?: number;
}

/** Every stable error code, with its HTTP status. Add new codes here, nowhere else. */
export const ERROR_CODES = {
  VALIDATION_FAILED: { status: 400, category: 'user', title: 'Request validation failed' },
  INVALID_PLAN: { status: 400, category: 'user', title: 'The plan is not valid' },
  INVALID_ROLE: { status: 400, category: 'user', title: 'Unknown role' },
  UNKNOWN_RUNNER: { status: 400, category: 'user', title: 'Unknown runner' },
  INVALID_CURSOR: { status: 400, category: 'user', title: 'Invalid pagination cursor' },
  UNAUTHENTICATED: { status: 401, category: 'user', title: 'Authentication required' },
  INVALID_TOKEN: { status: 401, category: 'user', title: 'Invalid credentials' },
  PERMISSION_DENIED: { status: 403, category: 'user', title: 'Permission denied' },
  // The operator's runnerAccess config keeps this runner from the caller's tenant.
  RUNNER_NOT_ALLOWED: { status: 403, category: 'user', title: 'Runner not allowed for this tenant' },
  NOT_FOUND: { status: 404, category: 'user', title: 'Not found' },
  SESSION_NOT_FOUND: { status: 404, category: 'user', title: 'Session not found' },
  ROLE_NOT_FOUND: { status: 404, category: 'user', title: 'Role not found' },
  METHOD_NOT_ALLOWED: { status: 405, category: 'user', title: 'Method not allowed' },
  IDEMPOTENCY_KEY_REUSED: {
    status: 409,
    category: 'user',
    title: 'Idempotency key reused with a different request',
  },
  INVALID_STATE: { status: 409, category: 'user', title: 'Operation not allowed in the current state' },
  CONFLICT: { status: 409, category: 'user', title: 'Conflict' },
  REQUEST_TIMEOUT: { status: 408, category: 'user', title: 'Request not received in time' },
  PAYLOAD_TOO_LARGE: { status: 413, category: 'user', title: 'Request body too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, category: 'user', title: 'Unsupported media type' },
  RATE_LIMITED: { status: 429, category: 'user', title: 'Too many requests', retryAfterSeconds: 1 },
  HEADERS_TOO_LARGE: { status: 431, category: 'user', title: 'Request headers too large' },
  RESOURCE_LIMIT_EXCEEDED: { status: 429, category: 'user', title: 'Resource limit exceeded' },
  QUOTA_EXCEEDED: { status: 429, category: 'user', title: 'Tenant quota exceeded' },
  BUDGET_EXCEEDED: { status: 422, category: 'user', title: 'Budget exceeded' },
  CONFIG_INVALID: { status: 500, category: 'system', title: 'Configuration is invalid' },
  // Start-up failures of `maos serve`, never sent over HTTP; 409 makes the CLI exit 6 (conflict),
  // as for a second server on the same SQLite database.
  PORT_IN_USE: { status: 409, category: 'system', title: 'Listen address already in use' },
  PORT_NOT_PERMITTED: { status: 500, category: 'system', title: 'Listen address not permitted' },
  // A local command run as root on another user's data directory (store/data-dir-owner.ts): never
  // sent over HTTP; a mistake to fix, not an outage to wait out (unlike STORE_UNAVAILABLE). Exit 7.
  DATA_DIR_OWNER_MISMATCH: {
    status: 500,
    category: 'system',
    title: 'Data directory belongs to another user',
  },
  MIGRATION_REQUIRED: { status: 503, category: 'system', title: 'Database migrations pending' },
  DATABASE_NEWER_THAN_CODE: {
    status: 503,
    category: 'system',
    title: 'Database schema is newer than this build',
  },
  SHUTTING_DOWN: {
    status: 503,
    category: 'system',
    title: 'Server is shutting down',
    retryAfterSeconds: 1,
  },
  STORE_UNAVAILABLE: { status: 503, category: 'upstream', title: 'Database unavailable' },
  AUTH_PROVIDER_UNAVAILABLE: {
    status: 503,
    category: 'upstream',
    title: 'Identity provider unavailable',
  },
  SECRET_UNREADABLE: { status: 500, category: 'system', title: 'Stored secret cannot be decrypted' },
  RUNNER_FAILED: { status: 500, category: 'upstream', title: 'Runner failed' },
  PROVIDER_ERROR: { status: 502, category: 'upstream', title: 'LLM provider error' },
  PROVIDER_UNAVAILABLE: { status: 503, category: 'upstream', title: 'LLM provider unavailable' },
  // The model refused, or the provider's content filter stopped, an answer before any text: the
  // request's content is the cause, not the provider's health (not retried, no fallback).
  PROVIDER_REFUSED: { status: 422, category: 'user', title: 'LLM provider refused the answer' },
  TIMEOUT: { status: 504, category: 'upstream', title: 'Timed out' },
  SERVER_UNREACHABLE: { status: 502, category: 'upstream', title: 'MAOS server unreachable' },
  INTERNAL: { status: 500, category: 'system', title: 'Internal error' },
} as const satisfies Record<string, CodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface AppErrorOptions {
  /** Machine-readable extra facts (e.g. the list of validation issues). Sent to clients. */
  details?: unknown;
  cause?: unknown;
  /**
   * Seconds after which the same request may succeed, sent as `Retry-After` (a 429 or 503 whose
   * wait is known: a rate limit's reset, a quota's, an identity provider not asked again before
   * then). The one way an error sets that header (http/plugins/error-handler.ts sendProblem).
   * @defaultValue the code's own (ERROR_CODES), if any
   */
  retryAfterSeconds?: number;
}

/** An error with a stable code. Its message is safe to show to the caller. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  /** See AppErrorOptions.retryAfterSeconds. */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds ?? (ERROR_CODES[code] as CodeSpec).retryAfterSeconds;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  get category(): ErrorCategory {
    return ERROR_CODES[this.code].category;
  }
}

/** Turns anything thrown into an Error, so catch blocks never handle `unknown` by hand. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  if (typeof thrown === 'string') return new Error(thrown);
  try {
    return new Error(JSON.stringify(thrown));
  } catch {
    return new Error(String(thrown));
  }
}

/** Returns the AppError as is, or wraps anything else as INTERNAL (its message kept out of responses). */
export function toAppError(thrown: unknown): AppError {
  if (thrown instanceof AppError) return thrown;
  return new AppError('INTERNAL', 'An internal error occurred', { cause: coerceError(thrown) });
}

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CODES, value);
}
