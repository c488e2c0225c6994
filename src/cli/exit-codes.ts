// Exit codes of the `maos` command and the one error type the CLI reports with: a remote
// problem+json, a local AppError or a connection failure all become a CliError with an exit code.
import { AppError } from '../errors/app-error.ts';

/** Exit codes; documented in docs/user-guide.md. Scripts may rely on them. */
export const EXIT = {
  /** Command succeeded (for `run --follow`: the session completed). */
  OK: 0,
  /** The session ended `failed` or `cancelled`. */
  SESSION_FAILED: 1,
  /** Bad usage, or the request/config was rejected as invalid (HTTP 400, 413, 415, 422). */
  USAGE: 2,
  /** The server could not be reached (connection refused, DNS, timeout). */
  UNREACHABLE: 3,
  /** The session, role or route does not exist (HTTP 404). */
  NOT_FOUND: 4,
  /** Missing or rejected credentials, or not allowed (HTTP 401, 403). */
  AUTH: 5,
  /**
   * Conflict with the current state (HTTP 409: idempotency key reused, session already ended); for
   * `maos serve`, another process holds its port (PORT_IN_USE) or its SQLite database (CONFLICT).
   */
  CONFLICT: 6,
  /**
   * Server-side or local system failure (HTTP 5xx, 429, unexpected response, database error); for
   * `maos serve` and `maos mcp` in embedded mode, a step of its shutdown failed (SHUTDOWN_INCOMPLETE:
   * it stopped, not cleanly).
   */
  SERVER: 7,
  /** Interrupted by Ctrl-C (128 + SIGINT). */
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure the CLI prints as `error CODE: message` on stderr and exits with `exitCode`. */
export class CliError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;
  /** Extra lines shown under the message (e.g. every config problem). */
  readonly details: string[];
  /** True when trying again later may succeed (unreachable, restarting or overloaded server). */
  readonly retryable: boolean;

  constructor(
    code: string,
    message: string,
    exitCode: ExitCode,
    details: string[] = [],
    options: { retryable?: boolean } = {},
  ) {
    super(message);
    this.name = 'CliError';
    this.code = code;
    this.exitCode = exitCode;
    this.details = details;
    this.retryable = options.retryable ?? exitCode === EXIT.UNREACHABLE;
  }
}

/** The exit code for an HTTP error status. */
export function exitCodeForStatus(status: number): ExitCode {
  if (status === 401 || status === 403) return EXIT.AUTH;
  if (status === 404) return EXIT.NOT_FOUND;
  if (status === 409) return EXIT.CONFLICT;
  if (status >= 400 && status < 500 && status !== 429) return EXIT.USAGE;
  return EXIT.SERVER;
}

/** Converts anything thrown by a command into a CliError (never leaks a stack trace). */
export function toCliError(thrown: unknown): CliError {
  if (thrown instanceof CliError) return thrown;
  if (thrown instanceof AppError) {
    const details = Array.isArray(thrown.details)
      ? thrown.details.filter((d): d is string => typeof d === 'string')
      : [];
    const message = details.length > 0 ? thrown.message.split('\n')[0] : thrown.message;
    // An invalid config file is the user's input, not a server fault.
    const exitCode = thrown.code === 'CONFIG_INVALID' ? EXIT.USAGE : exitCodeForStatus(thrown.status);
    return new CliError(thrown.code, message ?? thrown.message, exitCode, details);
  }
  const message = thrown instanceof Error ? thrown.message : String(thrown);
  return new CliError('INTERNAL', message, EXIT.SERVER);
}
